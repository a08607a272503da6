"""Fault drills: kill or restart one piece under a running service and check nothing is lost.

Each drill starts its own throw-away servers on free ports (tests/servers.py) and stops them at
the end; the machine's shared PostgreSQL and Redis are only ever used, never stopped.

A. a Celery worker SIGKILLed mid-export → the job completes exactly once on a new worker;
B. Redis SIGKILLed and restarted under gunicorn → the API answers as documented meanwhile,
   /ready flips to 503 and back, a logout made before the outage still holds;
C. PostgreSQL (a throw-away cluster) restarted under gunicorn → clean 503s during the outage,
   success right after it, gunicorn never restarted;
D. a gunicorn worker SIGKILLed among concurrent sign-ups → every user row is whole or absent.

Skipped when TEST_DATABASE_URL or TEST_REDIS_URL is unset; fails when either is unreachable or
when redis-server / initdb / pg_ctl are missing.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait

import pytest
import requests
from sqlalchemy import select, text

from tests.conftest import PASSWORD
from tests.servers import (  # noqa: F401  (fixtures)
    VISIBILITY, gunicorns, migrate, redis_broker, services_urls, start_worker, throwaway_postgres,
    throwaway_redis, wait_for,
)

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not (os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL")),
                       reason="TEST_DATABASE_URL and TEST_REDIS_URL must both be set"),
]
TIMEOUT = 5  # seconds: no request may take longer than this, outage or not


@pytest.fixture
def shared_services():
    """(TEST_DATABASE_URL, TEST_REDIS_URL), failing the test when either is unreachable."""
    return services_urls()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def get(server, path, token=None) -> requests.Response:
    return requests.get(f"{server.base}{path}", headers=bearer(token) if token else {}, timeout=TIMEOUT)


def login(server, email, password=PASSWORD) -> requests.Response:
    return requests.post(f"{server.base}/api/v1/auth/login", json={"email": email, "password": password},
                         timeout=TIMEOUT)


def assert_error_shape(response: requests.Response, code: int) -> None:
    assert response.status_code == code, (response.status_code, response.text)
    body = response.json()
    assert body["code"] == code and body["status"] and body["message"], body


# --- A: Celery worker SIGKILLed mid-export ------------------------------------------------------

def job_status(client, access, job_id):
    return client.get(f"/api/v1/jobs/{job_id}", headers=bearer(access)).get_json()


def test_a_worker_killed_mid_export_then_job_completes_once(app, client, start_worker, make_user, token,
                                                            outbox, query_db):
    """Late acknowledgement: the killed worker's task comes back and runs to the end once."""
    from webapp.jobs.models import Job
    from webapp.mail.models import SentEmail
    from webapp.settings_paths import job_results_dir

    admin = make_user(role="admin")
    for _ in range(11):
        make_user(verified=True)
    access = token(admin)
    first = start_worker()
    job = client.post("/api/v1/jobs/user-export", json={"format": "csv"}, headers=bearer(access)).get_json()
    # 12 users, 2 per batch, 0.3 s a batch: kill it once it is visibly under way
    wait_for(lambda: 0 < job_status(client, access, job["id"])["progress"] < 60, what="export under way")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(5)
    killed = job_status(client, access, job["id"])
    assert killed["status"] == "running" and killed["progress"] < 100

    time.sleep(VISIBILITY + 0.5)  # the unacknowledged task becomes visible again
    start_worker()
    wait_for(lambda: job_status(client, access, job["id"])["status"] == "succeeded", timeout=30,
             what="export after restart")
    stored = query_db(lambda s: s.get(Job, job["id"]))
    assert stored.attempts == 2 and stored.progress == 100
    result = client.get(f"/api/v1/jobs/{job['id']}/result", headers=bearer(access)).get_data(as_text=True)
    assert result.count("\n") == 13
    # One result file; the killed run's partial file was replaced, not left beside it.
    # (ids restart with each test's fresh schema: files of other kinds with this id may be there)
    files = [p.name for p in job_results_dir(app.config).iterdir()
             if p.name.lstrip(".").startswith(f"{job['id']}-users")]
    assert files == [f"{job['id']}-users.csv"]

    wait_for(lambda: [m for m in outbox(admin.email) if "job" in m["Subject"]], what="job email")
    time.sleep(1)  # any duplicate would arrive now
    assert len([m for m in outbox(admin.email) if "job" in m["Subject"]]) == 1
    keys = query_db(lambda s: s.scalars(select(SentEmail.key).where(SentEmail.key.like("job-finished:%"))).all())
    assert len(keys) == 1 and keys[0].startswith(f"job-finished:{job['id']}:")


# --- B: Redis killed and restarted ----------------------------------------------------------

def test_b_redis_killed_and_restarted(shared_services, throwaway_redis, gunicorns, make_user):
    """Redis holds limits and the broker, not the truth: the API keeps answering without it."""
    db_url, _ = shared_services
    web = gunicorns(DATABASE_URL=db_url, REDIS_URL=throwaway_redis.url, RATELIMIT_LOGIN_FAILURES="3/minute")
    user, victim = make_user(), make_user()
    token = login(web, user.email).json()["access_token"]
    signed_out = login(web, user.email).json()["access_token"]
    assert requests.post(f"{web.base}/api/v1/auth/logout", headers=bearer(signed_out),
                         timeout=TIMEOUT).status_code == 204
    assert get(web, "/ready").status_code == 200

    throwaway_redis.kill()
    assert get(web, "/health").status_code == 200
    ready = get(web, "/ready")
    assert ready.status_code == 503, ready.text
    checks = ready.json()["checks"]
    assert checks["database"] == "ok" and checks["redis"].startswith("error"), checks
    for _ in range(6):  # both workers, whichever gets the connection
        assert get(web, "/api/v1/users/me", token).status_code == 200
        assert get(web, "/api/v1/users/me", signed_out).status_code == 401  # revocations are in PostgreSQL
    fresh = login(web, user.email)
    assert fresh.status_code == 200, fresh.text
    assert get(web, "/api/v1/users/me", fresh.json()["access_token"]).status_code == 200
    # The failed-login limiter falls back to each process's memory: looser, but never gone.
    # 3/minute per worker, 2 workers: the 7th failure at the latest must be refused.
    statuses = []
    for _ in range(7):
        statuses.append(login(web, victim.email, "a wrong password!").status_code)
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}, statuses

    throwaway_redis.start()  # same port, same folder: the AOF is replayed
    wait_for(lambda: get(web, "/ready").status_code == 200, timeout=15, what="/ready back to 200")
    assert get(web, "/api/v1/users/me", signed_out).status_code == 401
    assert get(web, "/api/v1/users/me", token).status_code == 200
    assert login(web, user.email).status_code == 200


# --- C: PostgreSQL restarted --------------------------------------------------------------------

ME_QUERY = "{ me { id name } }"


def test_c_postgres_restarted_under_a_running_gunicorn(throwaway_postgres, gunicorns, tmp_path):
    """Clean 503s (the error shape, quickly) while it is down; 200s as soon as it is back."""
    migrate(throwaway_postgres.url, tmp_path / "migrate")
    web = gunicorns(DATABASE_URL=throwaway_postgres.url)
    signup = requests.post(f"{web.base}/api/v1/users", json={"name": "Pat", "email": "pat@example.com",
                                                            "password": PASSWORD}, timeout=TIMEOUT)
    assert signup.status_code == 201, signup.text
    token = login(web, "pat@example.com").json()["access_token"]

    def burst(n=8):
        """Concurrent requests, so every worker and several pooled connections take part."""
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda _: get(web, "/api/v1/users/me", token), range(n)))

    assert {r.status_code for r in burst()} == {200}  # both workers hold pooled connections now

    throwaway_postgres.stop("fast")
    started = time.monotonic()
    during = burst()
    for response in during:
        assert_error_shape(response, 503)
        assert response.headers.get("Retry-After")
    assert_error_shape(login(web, "pat@example.com"), 503)
    graphql = requests.post(f"{web.base}/graphql", json={"query": ME_QUERY}, headers=bearer(token), timeout=TIMEOUT)
    assert graphql.status_code == 503, graphql.text  # the token check fails before execution
    assert graphql.json()["data"] is None
    assert [e["extensions"]["code"] for e in graphql.json()["errors"]] == ["SERVICE_UNAVAILABLE"]
    anonymous = requests.post(f"{web.base}/graphql", timeout=TIMEOUT, json={  # no token: the resolver meets it
        "query": 'mutation { login(email: "pat@example.com", password: "whatever it is") { accessToken } }'})
    assert anonymous.status_code in (200, 503), anonymous.text
    assert [e["extensions"]["code"] for e in anonymous.json()["errors"]] == ["SERVICE_UNAVAILABLE"]
    assert get(web, "/health").status_code == 200
    assert get(web, "/ready").status_code == 503
    assert time.monotonic() - started < 3 * TIMEOUT, "requests hung while PostgreSQL was down"

    throwaway_postgres.start()
    # No retry loop: pg_ctl -w returned, so the very next requests must succeed, on every worker.
    assert [r.status_code for r in burst(12)] == [200] * 12
    assert login(web, "pat@example.com").status_code == 200
    me = requests.post(f"{web.base}/graphql", json={"query": ME_QUERY}, headers=bearer(token), timeout=TIMEOUT)
    assert me.json() == {"data": {"me": {"id": signup.json()["id"], "name": "Pat"}}}
    assert get(web, "/ready").status_code == 200

    # A restart no request saw (a quiet hour, a failover): every pooled connection is dead, and
    # still the first requests succeed: the pool drops connections the server has closed.
    assert {r.status_code for r in burst()} == {200}
    throwaway_postgres.stop("fast")
    throwaway_postgres.start()
    assert [r.status_code for r in burst(12)] == [200] * 12


# --- D: a gunicorn worker SIGKILLed during writes ---------------------------------------------

SIGNUPS, CLIENTS = 80, 12


def test_d_gunicorn_worker_killed_during_writes(shared_services, gunicorns, query_db):
    """A user is created with its profile and verification token in one transaction: all or nothing."""
    from webapp.accounts.models import VERIFY_EMAIL, AccountToken
    from webapp.users.models import Profile, User

    db_url, _ = shared_services
    web = gunicorns(DATABASE_URL=db_url)
    victims = web.worker_pids()
    assert len(victims) == 2
    run = uuid.uuid4().hex[:8]
    emails = [f"d-{run}-{n}@example.com" for n in range(SIGNUPS)]

    def sign_up(email):
        try:
            response = requests.post(f"{web.base}/api/v1/users", timeout=10,
                                     json={"name": "Drill", "email": email, "password": PASSWORD})
            return response.status_code
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            return "connection error"  # cut off by the kill: before the answer or halfway through it

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = {pool.submit(sign_up, email): email for email in emails}
        wait_for(lambda: sum(f.done() for f in futures) >= 10, timeout=30, interval=0.01,
                 what="the first sign-ups")
        os.kill(victims[0], signal.SIGKILL)  # mid-stream: it holds requests in flight
        done, pending = wait(futures, timeout=60)
        assert not pending
    outcome = {futures[f]: f.result() for f in done}

    statuses = set(outcome.values())
    assert statuses <= {201, "connection error"}, statuses  # never a 500
    created = {email for email, status in outcome.items() if status == 201}
    assert created, outcome

    def stored(session):
        users = session.execute(select(User.id, User.email).where(User.email.like(f"d-{run}-%"))).all()
        ids = [u.id for u in users]
        profiles = set(session.scalars(select(Profile.user_id).where(Profile.user_id.in_(ids))))
        tokens = set(session.scalars(select(AccountToken.user_id).where(
            AccountToken.user_id.in_(ids), AccountToken.purpose == VERIFY_EMAIL)))
        orphans = session.execute(text(
            "SELECT count(*) FROM users u LEFT JOIN profiles p ON p.user_id = u.id WHERE p.user_id IS NULL"
        )).scalar()
        return users, profiles, tokens, orphans

    users, profiles, tokens, orphans = query_db(stored)
    emails_stored = {u.email for u in users}
    assert created <= emails_stored  # a 201 means committed
    assert orphans == 0
    assert {u.id for u in users} == profiles == tokens  # whole rows: user, profile and token together
    # The master replaced the killed worker, and the service still signs people up.
    wait_for(lambda: len(set(web.worker_pids()) - set(victims)) == 1 and len(web.worker_pids()) == 2,
             timeout=20, what="a replacement worker")
    again = requests.post(f"{web.base}/api/v1/users", timeout=10,
                          json={"name": "After", "email": f"d-{run}-after@example.com", "password": PASSWORD})
    assert again.status_code == 201, again.text
    print(f"drill D: {len(created)} created, {list(outcome.values()).count('connection error')} cut off, "
          f"{len(emails_stored) - len(created)} committed but unanswered")
