"""Any host finishes a sign-in another host started: the flow's secrets live in the shared database.

Two gunicorn hosts (tests/servers.py) on TEST_DATABASE_URL and TEST_REDIS_URL answer under one
public name (`PUBLIC_HOST`, as behind a load balancer): host A sends the browser to the real
provider (tests/sso.py), host B takes the provider's callback, both try the code at once (one
wins), both serve /users/me with the tokens, and the spent state fails on A.
Skipped when TEST_DATABASE_URL or TEST_REDIS_URL is unset; fails when either is unreachable.
"""
from __future__ import annotations

import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from tests.servers import gunicorns, services_urls  # noqa: F401  (gunicorns: a fixture)
from tests.sso import APP, CLIENT_ID, CLIENT_SECRET, PUBLIC_HOST, Browser, app_params
from tests.sso import oidc_provider  # noqa: F401  (the session's provider, a fixture)

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not (os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL")),
                       reason="TEST_DATABASE_URL and TEST_REDIS_URL must both be set"),
]


class ViaPublicName:
    """Requests to one host as a load balancer in front of both passes them on: `Host: PUBLIC_HOST`."""

    def __init__(self, host):
        self.host = host

    def get(self, url, query_string=None):
        parts = urlsplit(url)
        return requests.get(f"{self.host.base}{parts.path}" + (f"?{parts.query}" if parts.query else ""),
                            params=query_string, headers={"Host": PUBLIC_HOST}, allow_redirects=False, timeout=10)


@pytest.fixture
def hosts(app, gunicorns, oidc_provider, redis_url):  # noqa: F811  (the imported fixtures)
    """Hosts A and B on the database the `app` fixture migrated, and an emptied Redis."""
    db_url, _ = services_urls()
    provider = {"name": "test", "issuer": oidc_provider.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    shared = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "CELERY_QUEUE_PREFIX": f"oidc-{uuid.uuid4().hex[:8]}-",
              "OIDC_PROVIDERS": json.dumps([provider]), "OIDC_REDIRECT_URIS": APP}
    return gunicorns("a", **shared), gunicorns("b", **shared)


def test_a_sign_in_started_on_one_host_is_finished_on_the_other(hosts, oidc_provider):  # noqa: F811
    a, b = hosts
    browser = Browser(ViaPublicName(a), oidc_provider.issuer)
    browser.account("hopper", email="grace.hopper@example.com", email_verified=True, name="Grace Hopper")
    started = browser.authorize()
    assert started.status_code == 302, started.text
    callback = browser.at_provider(started.headers["Location"], "hopper")
    assert callback.startswith(f"http://{PUBLIC_HOST}/api/v1/auth/oidc/test/callback?")
    code = app_params(ViaPublicName(b).get(callback))["code"]
    with ThreadPoolExecutor(2) as pool:  # both hosts at once: the code is spent exactly once
        answers = list(pool.map(lambda host: requests.post(f"{host.base}/api/v1/auth/oidc/exchange",
                                                           json={"code": code}, timeout=10), (a, b)))
    assert sorted(answer.status_code for answer in answers) == [200, 400], [answer.text for answer in answers]
    winner = next(answer for answer in answers if answer.status_code == 200)
    for host in (a, b):
        me = requests.get(f"{host.base}/api/v1/users/me", timeout=10,
                          headers={"Authorization": f"Bearer {winner.json()['access_token']}"})
        assert me.status_code == 200 and me.json()["email"] == "grace.hopper@example.com"
        assert me.json()["name"] == "Grace Hopper"
    assert ViaPublicName(a).get(callback).status_code == 400  # the state was spent on B
