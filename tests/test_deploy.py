"""deploy/: the compose file parses and wires what ops expect; gunicorn really starts with its config."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def test_compose_file_wires_the_stack():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker-email", "worker-heavy", "beat"} <= set(services)
    assert "noeviction" in " ".join(services["redis"]["command"])
    assert services["web"]["command"] == ["web"]
    assert services["worker-email"]["environment"]["CELERY_QUEUES"] == "email"
    assert services["worker-heavy"]["environment"]["CELERY_QUEUES"] == "heavy"
    for name in ("web", "worker-email", "worker-heavy", "beat"):
        env = services[name]["environment"]
        assert env["APP_ENV"] == "production"
        assert env["SECRET_KEY"].startswith("${") and env["JWT_SECRET_KEY"].startswith("${")  # never a literal
        assert set(services[name]["depends_on"]) == {"postgres", "redis", "migrate"}
        # no process starts before the schema is at head
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("postgres", "redis", "web"):
        assert "healthcheck" in services[name]


def test_compose_processes_share_the_instance_volume_and_check_their_own_health():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    # results written by a worker are served by web; avatars uploaded to web are thumbnailed by a worker
    for name in ("web", "worker-email", "worker-heavy", "beat", "migrate"):
        assert "appdata:/app/instance" in services[name]["volumes"]
    assert "appdata" in compose["volumes"]
    for name in ("worker-email", "worker-heavy"):
        check = " ".join(services[name]["healthcheck"]["test"])
        assert "inspect ping" in check and "8000" not in check
    assert services["beat"]["healthcheck"] == {"disable": True}  # not the image's web check
    entrypoint = (DEPLOY / "entrypoint.sh").read_text()
    assert re.search(r"^  migrate\)\n    exec flask --app wsgi db upgrade", entrypoint, re.M)


def test_dockerfile_runs_as_a_non_root_user_and_migrates_first():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER delta$", dockerfile, re.M)
    assert "slim" in dockerfile and "HEALTHCHECK" in dockerfile
    assert "pip install -r requirements.lock" in dockerfile  # what CI tested, not what PyPI has today
    entrypoint = (DEPLOY / "entrypoint.sh").read_text()
    assert entrypoint.index("db upgrade") < entrypoint.index("exec gunicorn")
    assert os.access(DEPLOY / "entrypoint.sh", os.X_OK)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


@pytest.fixture
def gunicorn(tmp_path):
    port = _free_port()
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}",
           "WEB_CONCURRENCY": "2", "PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           "APP_ENV": "development"}
    env.pop("TEST_DATABASE_URL", None)
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    process = subprocess.Popen([bin_dir / "gunicorn", "--config", "deploy/gunicorn.conf.py", "wsgi:app"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if _get(f"{base}/health")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(process.stdout.read().decode()[-3000:])
    yield base, process
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def test_gunicorn_serves_with_the_shipped_config_and_metrics_count_every_worker(gunicorn):
    base, process = gunicorn
    for _ in range(40):
        assert _get(f"{base}/health")[0] == 200
    status, text = _get(f"{base}/metrics")
    assert status == 200
    counts = [float(v) for v in re.findall(
        r'delta_http_requests_total\{endpoint="/health",method="GET",status="200"\} (\S+)', text)]
    assert sum(counts) >= 40
    workers = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) == 2


def test_gunicorn_reloads_gracefully_on_hup(gunicorn):
    base, process = gunicorn
    before = set(subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split())
    process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    after = before
    while time.monotonic() < deadline:
        after = set(subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split())
        if len(after) == 2 and not (after & before):
            break
        time.sleep(0.2)
    assert len(after) == 2 and not (after & before)
    assert _get(f"{base}/health")[0] == 200


def test_the_package_builds_without_setuptools_warnings_and_ships_its_templates(tmp_path):
    """Issue 18: a first install printed ~90 "Package would be ignored" warnings (static/templates)."""
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path), "."],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    assert "would be ignored" not in build.stdout + build.stderr
    import zipfile

    (wheel,) = tmp_path.glob("delta-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "webapp/templates/account_link.html" in names and "webapp/static/favicon.ico" in names
    makefile = (ROOT / "Makefile").read_text()
    assert "==> installing into" in makefile  # the first `make run` says what it is doing
