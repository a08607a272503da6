"""Fault drills for Idempotency-Key: a write whose request dies mid-flight is performed exactly once.

Each drill runs gunicorn on a throw-away PostgreSQL cluster (tests/servers.py). The test holds
`LOCK TABLE idempotency_keys IN EXCLUSIVE MODE` (reads pass, writes wait), so a POST carrying a
key stops after its write, at the moment it records the key, before anything is committed —
the window in which the old design (write committed, key finalised in a second transaction)
lost track of the key. Then the request dies: its gunicorn worker is SIGKILLed (drill 1) or
PostgreSQL is restarted (drill 2). Retrying with the same key must perform the write once and
then replay it.

Skipped when TEST_DATABASE_URL or TEST_REDIS_URL is unset (the services suite); fails when
initdb / pg_ctl are missing.
"""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import PASSWORD
from tests.servers import gunicorns, migrate, throwaway_postgres, wait_for  # noqa: F401  (fixtures)

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not (os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL")),
                       reason="TEST_DATABASE_URL and TEST_REDIS_URL must both be set"),
]
TIMEOUT = 10
KEY = "drill-0001"
BODY = {"title": "Exactly once", "content": "performed once whatever dies"}
WAITING_ON_THE_KEY = """
    SELECT pid, client_port, backend_xid IS NOT NULL AS wrote, query FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND query ILIKE '%idempotency_keys%' AND pid <> pg_backend_pid()
"""


@pytest.fixture
def drill(throwaway_postgres, gunicorns, tmp_path):
    """A gunicorn on a fresh cluster, a verified user's token, and SQL straight to the database."""
    migrate(throwaway_postgres.url, tmp_path / "migrate")
    # Long enough that a request blocked by the test's lock waits for the kill, not a 409.
    web = gunicorns(DATABASE_URL=throwaway_postgres.url, IDEMPOTENCY_WAIT_SECONDS=120)
    engine = create_engine(throwaway_postgres.url, pool_pre_ping=True)
    signup = requests.post(f"{web.base}/api/v1/users", timeout=TIMEOUT,
                           json={"name": "Drill", "email": "drill@example.com", "password": PASSWORD})
    assert signup.status_code == 201, signup.text
    with engine.begin() as connection:
        connection.execute(text("UPDATE users SET email_verified = now()"))
    login = requests.post(f"{web.base}/api/v1/auth/login", timeout=TIMEOUT,
                          json={"email": "drill@example.com", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}", "Idempotency-Key": KEY}
    try:
        yield web, engine, headers
    finally:
        engine.dispose()


def post(web, headers):
    return requests.post(f"{web.base}/api/v1/posts", json=BODY, headers=headers, timeout=TIMEOUT)


def start_blocked_post(web, engine, headers):
    """Hold the key table, send the POST, return (holder connection, outcome, waiting backend)."""
    holder = engine.connect()
    holder.execute(text("LOCK TABLE idempotency_keys IN EXCLUSIVE MODE"))
    outcome: dict = {}

    def send():
        try:
            outcome["response"] = requests.post(f"{web.base}/api/v1/posts", json=BODY, headers=headers, timeout=60)
        except requests.RequestException as exc:  # the kill cuts it off
            outcome["error"] = exc

    thread = threading.Thread(target=send)
    thread.start()
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as watcher:  # fresh activity per poll
        waiting = wait_for(lambda: watcher.execute(text(WAITING_ON_THE_KEY)).first(), what="the POST at its key")
    # It has written (a transaction id is assigned only by a write) and now waits to record the key.
    assert waiting.wrote, waiting
    assert count_posts(engine) == 0  # nothing committed yet
    return holder, thread, outcome, waiting


def count_posts(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM posts WHERE title = :t"), {"t": BODY["title"]}).scalar()


def worker_serving(web, client_port: int, pg_port: int) -> int:
    """The gunicorn worker that owns the TCP connection from `client_port` to PostgreSQL."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port, remote_port = int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16)
            if local_port == client_port and remote_port == pg_port:
                inodes.add(fields[9])
    for pid in web.worker_pids():
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return pid
    raise AssertionError(f"no gunicorn worker holds the connection from port {client_port}")


def retry_until_performed(web, headers) -> requests.Response:
    """What a client does after losing its answer: the same request, the same key, until it gets one."""
    answers = []

    def attempt():
        try:
            response = post(web, headers)
        except requests.RequestException as exc:
            answers.append(type(exc).__name__)
            return None
        answers.append(response.status_code)
        assert response.status_code in (201, 409, 503), (response.status_code, response.text)
        return response if response.status_code == 201 else None

    response = wait_for(attempt, timeout=60, interval=0.5, what="a 201 on retry")
    print(f"retries answered {answers}")
    return response


def assert_performed_once(web, engine, headers, first: requests.Response) -> None:
    assert count_posts(engine) == 1
    replay = post(web, headers)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json() and replay.headers["Location"] == first.headers["Location"]
    assert count_posts(engine) == 1
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM idempotency_keys")).scalar() == 1


def test_a_worker_killed_after_the_write_and_before_the_commit(drill, throwaway_postgres):
    web, engine, headers = drill
    holder, thread, outcome, waiting = start_blocked_post(web, engine, headers)
    victim = worker_serving(web, waiting.client_port, throwaway_postgres.port)
    os.kill(victim, signal.SIGKILL)
    thread.join(TIMEOUT)
    assert not thread.is_alive() and "error" in outcome, outcome  # the client lost its answer
    holder.rollback()  # the dead worker's transaction can go on only to find its client gone
    holder.close()

    first = retry_until_performed(web, headers)
    assert "Idempotent-Replayed" not in first.headers  # the killed request left nothing behind
    assert_performed_once(web, engine, headers, first)


def test_postgres_restarted_after_the_write_and_before_the_commit(drill, throwaway_postgres):
    web, engine, headers = drill
    holder, thread, outcome, _ = start_blocked_post(web, engine, headers)
    throwaway_postgres.stop("fast")  # the lock is still held: the POST dies waiting to record its key
    holder.invalidate()  # its session died with the server; nothing to give back to the pool
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    cut_off = outcome.get("response")
    assert cut_off is not None and cut_off.status_code == 503, outcome  # a clean answer, nothing stored
    assert cut_off.json()["code"] == 503 and cut_off.headers["Retry-After"]
    throwaway_postgres.start()
    engine.dispose()

    first = retry_until_performed(web, headers)
    assert "Idempotent-Replayed" not in first.headers
    assert_performed_once(web, engine, headers, first)
