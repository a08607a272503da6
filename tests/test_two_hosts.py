"""Two hosts, one truth: two gunicorn instances on one PostgreSQL and one Redis agree.

Two `gunicorn --config deploy/gunicorn.conf.py` masters (2 workers each) on free ports play two
hosts: each has its own instance folder, both share TEST_DATABASE_URL (migrated with
`flask --app wsgi db upgrade`), TEST_REDIS_URL (rate limits, cache) and the JWT secret.

Celery: REDIS_URL makes Redis the broker too. These scenarios enqueue no task (users are made
through the service, and logins, logouts and renames send no email), so no worker runs; the
servers publish to queues of their own (CELERY_QUEUE_PREFIX) and the fixture checks at the end
that nothing was left on them, then deletes them.

Skipped when TEST_DATABASE_URL or TEST_REDIS_URL is unset; fails when either is unreachable.
"""
from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import PASSWORD
from tests.servers import Gunicorn, migrate, services_urls

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not (os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL")),
                       reason="TEST_DATABASE_URL and TEST_REDIS_URL must both be set"),
]


@pytest.fixture(scope="module")
def hosts(app, tmp_path_factory):
    """Hosts A and B, started together; stopped (process groups) at the end of the module."""
    db_url, redis_url = services_urls()
    import redis

    home = tmp_path_factory.mktemp("two-hosts")
    migrate(db_url, home / "migrate")
    # The test process writes users through its own app (no Redis cache), and the database is
    # reset between runs: cached views from an earlier run would be another run's rows.
    stale = redis.Redis.from_url(redis_url)
    for key in stale.scan_iter("delta:cache:*"):
        stale.delete(key)
    prefix = f"two-hosts-{uuid.uuid4().hex[:8]}-"
    shared = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "CELERY_QUEUE_PREFIX": prefix,
              "RATELIMIT_LOGIN_FAILURES": "4/minute"}
    pair = [Gunicorn(home / name, **shared) for name in ("a", "b")]
    try:
        for host in pair:
            host.start()
        for host in pair:
            host.wait_ready()
        yield pair
    finally:
        Gunicorn.stop_all(pair)
    client = redis.Redis.from_url(redis_url)
    queued = {key.decode(): client.llen(key) for key in client.scan_iter(f"{prefix}*")
              if client.type(key) == b"list"}
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)
    assert not any(queued.values()), f"tasks were enqueued with no worker to run them: {queued}"


def login(host: Gunicorn, email: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(f"{host.base}/api/v1/auth/login", json={"email": email, "password": password}, timeout=10)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def graphql(host: Gunicorn, token: str, query: str, **variables) -> dict:
    response = requests.post(f"{host.base}/graphql", json={"query": query, "variables": variables},
                             headers=bearer(token), timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


def test_logout_on_one_host_is_honoured_by_the_other_at_once(hosts, make_user):
    a, b = hosts
    user = make_user()
    token = login(a, user.email).json()["access_token"]
    assert requests.get(f"{b.base}/api/v1/users/me", headers=bearer(token), timeout=10).status_code == 200

    assert requests.post(f"{a.base}/api/v1/auth/logout", headers=bearer(token), timeout=10).status_code == 204
    # No waiting: every worker of host B refuses it on the very next request.
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: requests.get(f"{b.base}/api/v1/users/me", headers=bearer(token),
                                                       timeout=10), range(8)))
    assert [r.status_code for r in answers] == [401] * 8
    assert answers[0].json()["code"] == 401
    assert requests.get(f"{a.base}/api/v1/users/me", headers=bearer(token), timeout=10).status_code == 401


def test_failed_logins_are_counted_across_both_hosts(hosts, make_user):
    a, b = hosts
    user = make_user(email=f"victim-{uuid.uuid4().hex[:10]}@example.com")  # a fresh counter each run
    for n in range(4):  # RATELIMIT_LOGIN_FAILURES=4/minute, alternating A, B, A, B
        response = login((a, b)[n % 2], user.email, "a wrong password!")
        assert response.status_code == 401, (n, response.text)
    response = login(a, user.email, "a wrong password!")
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert body["code"] == 429 and body["status"] == "Too Many Requests" and body["message"]
    # The account is locked on both hosts, even with the right password.
    assert login(b, user.email).status_code == 429


def test_a_write_through_one_host_is_read_fresh_through_the_other(hosts, make_user):
    a, b = hosts
    user = make_user(name="Before")
    token_a = login(a, user.email).json()["access_token"]
    token_b = login(b, user.email).json()["access_token"]
    url = f"/api/v1/users/{user.id}"
    assert requests.get(f"{b.base}{url}", headers=bearer(token_b), timeout=10).json()["name"] == "Before"

    # REST: PATCH on A, GET on B (every worker of B, not just one that happened to be warm).
    patched = requests.patch(f"{a.base}{url}", json={"name": "After REST"}, headers=bearer(token_a), timeout=10)
    assert patched.status_code == 200 and patched.json()["name"] == "After REST"
    for _ in range(6):
        assert requests.get(f"{b.base}{url}", headers=bearer(token_b), timeout=10).json()["name"] == "After REST"

    # GraphQL: updateUser on B, user(id) on A, and REST on A agrees.
    data = graphql(b, token_b, "mutation($id: Int!) { updateUser(id: $id, input: {name: \"After GraphQL\"}) "
                               "{ id name } }", id=user.id)
    assert data["updateUser"]["name"] == "After GraphQL"
    for _ in range(6):
        assert graphql(a, token_a, "query($id: Int!) { user(id: $id) { name } }", id=user.id) == {
            "user": {"name": "After GraphQL"}}
    assert requests.get(f"{a.base}{url}", headers=bearer(token_a), timeout=10).json()["name"] == "After GraphQL"
