"""A real OpenID provider for the single sign-on tests, and a browser that walks a sign-in by hand.

`oidc_provider` starts panva/oidc-provider (OpenID Certified), unchanged, under Node.js on a free
port (tests/oidc_provider/server.mjs; `npm ci` there first when its node_modules is missing). Its
one client is Delta, whose callback URLs it knows: as the Flask test client serves them
(`localhost`) and as gunicorn hosts behind one public name serve them (`PUBLIC_HOST`).
Node.js and npm are required: without them the tests fail, never skip.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.servers import free_port, kill_group, tail, wait_for

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID, CLIENT_SECRET = "delta-test", "delta-test-client-secret-0123456789"
APP = "http://127.0.0.1:3000/signed-in"  # the app's redirect_uri, in OIDC_REDIRECT_URIS
PROVIDERS = ("test", "wrongsecret")  # the second has the wrong client secret
CALLBACK = "http://localhost/api/v1/auth/oidc/{}/callback"  # Delta, as the Flask test client serves it
PUBLIC_HOST = "delta.test"  # the name two gunicorn hosts answer under (tests/test_oidc_hosts.py)


@dataclass
class Provider:
    issuer: str
    log: Path


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("Node.js and npm are needed to run the test OpenID provider (tests/oidc_provider)")
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=PROVIDER_DIR,
                                   capture_output=True, text=True, timeout=300)
        assert installed.returncode == 0, f"npm ci in {PROVIDER_DIR} failed:\n{installed.stderr[-2000:]}"
    port, log = free_port(), tmp_path_factory.mktemp("oidc") / "provider.log"
    clients = [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "redirect_uris": [*(CALLBACK.format(name) for name in PROVIDERS),
                                  f"http://{PUBLIC_HOST}/api/v1/auth/oidc/test/callback"]}]
    env = {**os.environ, "PORT": str(port), "CLIENTS": json.dumps(clients)}
    with open(log, "ab") as out:
        process = subprocess.Popen([node, "server.mjs"], cwd=PROVIDER_DIR, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def ready():
            if process.poll() is not None:
                raise AssertionError(f"the OpenID provider exited:\n{tail(log)}")
            return "ready http://" in log.read_text()

        wait_for(ready, timeout=30, what="the OpenID provider")
        yield Provider(f"http://127.0.0.1:{port}", log)
    finally:
        kill_group(process)


class Browser:
    """A user agent following redirects by hand: Delta through the test client, the provider over HTTP."""

    def __init__(self, client, issuer: str):
        self.client, self.issuer = client, issuer

    def account(self, sub: str, **claims) -> None:
        """What the provider will say about `sub` (email, email_verified, name)."""
        assert requests.put(f"{self.issuer}/_test/accounts/{sub}", json=claims, timeout=5).status_code == 204

    def authorize(self, provider="test", redirect_uri=APP):
        return self.client.get(f"/api/v1/auth/oidc/{provider}/authorize", query_string={"redirect_uri": redirect_uri})

    def at_provider(self, url: str, sub: str, *, abort=False) -> str:
        """Sign in as `sub` and consent; answers the URL the provider sends the browser back to.

        Each walk starts with no provider cookies, so it never rides on an earlier sign-in's session.
        """
        http, prompts = requests.Session(), []
        for _ in range(12):
            if not url.startswith(self.issuer):
                assert prompts[:1] == ["login"], prompts  # signed in as `sub` here, not by an old session
                return url
            response = http.get(url, allow_redirects=False, timeout=5)
            if response.status_code == 200 and 'name="prompt" value="' in response.text:
                prompt = response.text.split('name="prompt" value="')[1].split('"')[0]
                prompts.append(prompt)
                page = urlsplit(url).path
                if abort:
                    response = http.get(f"{self.issuer}{page}/abort", allow_redirects=False, timeout=5)
                else:
                    response = http.post(f"{self.issuer}{page}", data={"prompt": prompt, "login": sub, "password": "-"},
                                         allow_redirects=False, timeout=5)
            assert response.status_code in (302, 303), (response.status_code, response.text[:500])
            url = requests.compat.urljoin(url, response.headers["Location"])
        raise AssertionError("the provider kept redirecting")

    def sign_in(self, sub: str, *, provider="test", **claims):
        """The whole walk; answers Delta's callback response (a 302 to the app, or an error)."""
        if claims:
            self.account(sub, **claims)
        started = self.authorize(provider)
        assert started.status_code == 302, started.text
        return self.client.get(self.at_provider(started.headers["Location"], sub))


def app_params(response) -> dict:
    """The query Delta put on the app's redirect_uri."""
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(APP + "?"), location
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
