"""The docs pages and GraphiQL render in a real headless Chromium, with no network but loopback."""
from __future__ import annotations

import os
import shutil
import subprocess
import threading

import pytest
from werkzeug.serving import make_server

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def live_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def rendered_dom(url: str, tmp_path) -> str:
    """The DOM after the page's scripts ran, as Chromium sees it."""
    if CHROMIUM is None:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed but REQUIRE_BROWSER is set")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=15000",
               "--run-all-compositor-stages-before-draw", "--dump-dom", url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_swagger_ui_lists_the_operations(live_url, tmp_path):
    dom = rendered_dom(f"{live_url}/docs", tmp_path)
    assert "swagger-ui" in dom
    assert "opblock" in dom and "/api/v1/users/me" in dom
    assert "authorize" in dom.lower()


def test_redoc_renders_the_operations(live_url, tmp_path):
    dom = rendered_dom(f"{live_url}/redoc", tmp_path)
    assert "Sign in with email and password" in dom


def test_graphiql_editor_renders(live_url, tmp_path):
    dom = rendered_dom(f"{live_url}/graphql", tmp_path)
    assert "graphiql-container" in dom
    assert "CodeMirror" in dom or "cm-editor" in dom
