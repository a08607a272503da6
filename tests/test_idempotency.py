"""Idempotency-Key: a POST is performed once per caller and key, recorded with its write; refusals release it."""
from __future__ import annotations

import io
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text

from conf.settings import TestingConfig as Settings
from tests.conftest import PASSWORD
from tests.servers import redis_broker, start_worker, wait_for  # noqa: F401  (fixtures)
from webapp.db import utcnow
from webapp.idempotency.models import IdempotencyKey
from webapp.jobs.models import Job
from webapp.posts.models import Post
from webapp.users.models import User


def headers(tok=None, key="key-1"):
    result = {"Idempotency-Key": key}
    if tok:
        result["Authorization"] = f"Bearer {tok}"
    return result


def count(query_db, model, **where) -> int:
    return query_db(lambda s: s.query(model).filter_by(**where).count())


@contextmanager
def writes_held(app, table: str, waiters: int):
    """Hold every write to `table` until the block ends and `waiters` requests queue behind it.

    PostgreSQL: LOCK TABLE ... IN EXCLUSIVE MODE (reads pass, writes wait) and pg_stat_activity
    shows the waiting requests. SQLite: BEGIN IMMEDIATE holds the one write lock; waiting writers
    are invisible there, so they get a moment to arrive (the assertions hold either way).
    """
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite"):
        holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
            time.sleep(0.5)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_engine(url)
    try:
        watching = engine.execution_options(isolation_level="AUTOCOMMIT")  # a fresh pg_stat_activity per poll
        with engine.connect() as holder, watching.connect() as watcher:
            holder.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))
            try:
                yield
                wait_for(lambda: watcher.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")).scalar() >= waiters, what=f"{waiters} writers waiting")
            finally:
                holder.rollback()
    finally:
        engine.dispose()


def test_a_repeated_post_is_performed_once(client, make_user, token, query_db):
    tok = token(make_user())
    first = client.post("/api/v1/posts", json={"title": "Once"}, headers=headers(tok))
    second = client.post("/api/v1/posts", json={"title": "Once"}, headers=headers(tok))
    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Content-Type"] == first.headers["Content-Type"] == "application/json"
    assert second.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert second.headers["X-Request-ID"]  # a replay still goes through every response hook
    assert count(query_db, Post) == 1
    row = query_db(lambda s: s.query(IdempotencyKey).one())
    assert row.status_code == 201 and row.caller.startswith("user:")


def test_the_same_key_with_another_body_is_422(client, make_user, token, query_db):
    tok = token(make_user())
    assert client.post("/api/v1/posts", json={"title": "A"}, headers=headers(tok)).status_code == 201
    response = client.post("/api/v1/posts", json={"title": "B"}, headers=headers(tok))
    assert response.status_code == 422 and "Idempotency-Key" in response.get_json()["errors"]
    assert count(query_db, Post) == 1


def test_keys_belong_to_their_caller(client, make_user, token, query_db):
    alice, bob = token(make_user()), token(make_user())
    client.post("/api/v1/posts", json={"title": "Same"}, headers=headers(alice))
    response = client.post("/api/v1/posts", json={"title": "Same"}, headers=headers(bob))
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert count(query_db, Post) == 2


def test_sign_up_is_performed_once_with_one_email(client, query_db, outbox):
    body = {"name": "Ann", "email": "ann@example.com", "password": PASSWORD}
    first = client.post("/api/v1/users", json=body, headers=headers())
    second = client.post("/api/v1/users", json=body, headers=headers())
    assert first.status_code == second.status_code == 201 and first.get_json() == second.get_json()
    assert count(query_db, User) == 1
    # the verification email went out after the one real commit, and once
    assert [m["Subject"] for m in outbox("ann@example.com")] == ["Verify your email address"]
    # without the header the same request is a conflict, as always
    assert client.post("/api/v1/users", json=body).status_code == 409


def test_jobs_created_under_a_key_run_once(client, make_user, token, query_db, outbox):
    admin = make_user(role="admin")
    tok = token(admin)
    first = client.post("/api/v1/jobs/user-export", json={"format": "csv"}, headers=headers(tok, "export"))
    again = client.post("/api/v1/jobs/user-export", json={"format": "csv"}, headers=headers(tok, "export"))
    assert first.status_code == again.status_code == 202 and again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    job = client.get(first.headers["Location"], headers=headers(tok)).get_json()
    assert job["status"] == "succeeded"  # the task ran after the commit and found its job
    assert len([m for m in outbox(admin.email) if "job" in m["Subject"]]) == 1

    def upload():
        return {"file": (io.BytesIO(b"name,email\nImp,imp@example.com\n"), "users.csv")}

    imports = [client.post("/api/v1/jobs/user-import", data=upload(), content_type="multipart/form-data",
                           headers=headers(tok, "import")) for _ in range(2)]
    assert [r.status_code for r in imports] == [202, 202] and imports[1].headers["Idempotent-Replayed"] == "true"
    mine = client.post("/api/v1/users/me/export", headers=headers(tok, "mine"))
    assert mine.status_code == 202
    assert client.post("/api/v1/users/me/export", headers=headers(tok, "mine")).get_json() == mine.get_json()
    assert count(query_db, Job) == 3 and count(query_db, User, email="imp@example.com") == 1
    assert {j.status for j in query_db(lambda s: s.query(Job).all())} == {"succeeded"}


# --- refusals and failures release the key ---------------------------------------------------

def test_a_401_releases_the_key(client, make_user, login, query_db):
    user = make_user()
    signed_out = login(user)["access_token"]
    assert client.post("/api/v1/auth/logout", headers=headers(signed_out)).status_code == 204
    refused = client.post("/api/v1/posts", json={"title": "T"}, headers=headers(signed_out))
    assert refused.status_code == 401 and count(query_db, IdempotencyKey) == 0
    # same caller (user:<id>), same key, same body: signed in again, it is performed
    retry = client.post("/api/v1/posts", json={"title": "T"}, headers=headers(login(user)["access_token"]))
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert count(query_db, Post) == 1


def test_a_403_releases_the_key(client, make_user, token, query_db):
    user = make_user(verified=False)
    refused = client.post("/api/v1/posts", json={"title": "X"}, headers=headers(token(user)))
    assert refused.status_code == 403 and count(query_db, IdempotencyKey) == 0

    def verify(session):
        session.get(User, user.id).email_verified = utcnow()
        session.commit()

    query_db(verify)
    retry = client.post("/api/v1/posts", json={"title": "X"}, headers=headers(token(user)))
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert count(query_db, Post) == 1


def test_a_404_and_a_422_release_the_key(client, make_user, token, query_db):
    tok = token(make_user())
    assert client.post("/api/v1/nowhere", json={}, headers=headers(tok)).status_code == 404
    invalid = client.post("/api/v1/posts", json={"title": ""}, headers=headers(tok))
    assert invalid.status_code == 422 and count(query_db, IdempotencyKey) == 0
    fixed = client.post("/api/v1/posts", json={"title": "Fixed"}, headers=headers(tok))  # same key, new body
    assert fixed.status_code == 201
    assert count(query_db, Post) == 1 and count(query_db, IdempotencyKey) == 1


def test_a_429_releases_the_key(tmp_path):
    from webapp import create_app
    from webapp.cli import upgrade
    from webapp.extensions import db

    config = Settings().override(INSTANCE_PATH=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'rl.db'}",
                                      REDIS_URL="", RATELIMIT_SIGNUP_IP="1/minute")
    app = create_app(config)
    with app.app_context():
        upgrade()
    client = app.test_client()
    crowded, quiet = {"REMOTE_ADDR": "198.51.100.7"}, {"REMOTE_ADDR": "198.51.100.8"}
    other = {"name": "First", "email": "first@example.com", "password": PASSWORD}
    assert client.post("/api/v1/users", json=other, environ_base=crowded).status_code == 201
    body = {"name": "Ann", "email": "ann@example.com", "password": PASSWORD}
    limited = client.post("/api/v1/users", json=body, headers=headers(), environ_base=crowded)
    assert limited.status_code == 429 and limited.headers["Retry-After"]
    retry = client.post("/api/v1/users", json=body, headers=headers(), environ_base=quiet)
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    with app.app_context():
        assert db.session.scalar(select(User.id).where(User.email == "ann@example.com")) == retry.get_json()["id"]
        db.session.remove()
        db.engine.dispose()


def test_a_server_error_after_the_write_performs_nothing(client, make_user, token, query_db, monkeypatch):
    """The view committed, then failed: with the key, its write goes too, and a retry performs it."""
    from webapp.rest import posts as rest_posts

    tok = token(make_user())
    real_view = rest_posts.services.post_view

    def crash(post):
        raise RuntimeError("the answer could not be built")

    monkeypatch.setattr(rest_posts.services, "post_view", crash)
    failed = client.post("/api/v1/posts", json={"title": "Once"}, headers=headers(tok))
    assert failed.status_code == 500 and failed.get_json()["code"] == 500
    assert count(query_db, Post) == 0 and count(query_db, IdempotencyKey) == 0
    monkeypatch.setattr(rest_posts.services, "post_view", real_view)
    retry = client.post("/api/v1/posts", json={"title": "Once"}, headers=headers(tok))
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert count(query_db, Post) == 1


def test_a_rollback_after_a_deferred_commit_is_not_reported_as_success(client, make_user, token, query_db,
                                                                       monkeypatch):
    """A view that commits and then rolls back would lose its deferred write: 500, nothing performed."""
    from webapp.rest import posts as rest_posts

    real = rest_posts.services.create_post

    def commit_then_roll_back(session, *args, **kwargs):
        post = real(session, *args, **kwargs)
        session.rollback()
        return post

    monkeypatch.setattr(rest_posts.services, "create_post", commit_then_roll_back)
    tok = token(make_user())
    response = client.post("/api/v1/posts", json={"title": "Lost"}, headers=headers(tok))
    assert response.status_code == 500 and response.get_json()["code"] == 500
    assert count(query_db, Post) == 0 and count(query_db, IdempotencyKey) == 0


def test_a_claim_left_by_the_old_design_never_blocks(client, make_user, token, query_db, app):
    from webapp.idempotency import _fingerprint

    user = make_user()
    with app.test_request_context("/api/v1/posts", method="POST", json={"title": "T"}):
        fingerprint = _fingerprint()

    def claim(session):
        session.add(IdempotencyKey(caller=f"user:{user.id}", key="busy", fingerprint=fingerprint,
                                   expires_at=utcnow() + timedelta(hours=1)))
        session.commit()

    query_db(claim)
    response = client.post("/api/v1/posts", json={"title": "T"}, headers=headers(token(user), "busy"))
    assert response.status_code == 201
    assert count(query_db, Post) == 1 and query_db(lambda s: s.query(IdempotencyKey).one()).status_code == 201


def test_keys_expire_after_a_day(client, make_user, token, query_db):
    tok = token(make_user())
    client.post("/api/v1/posts", json={"title": "Daily"}, headers=headers(tok))

    def age(session):
        for row in session.query(IdempotencyKey):
            row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()

    query_db(age)
    response = client.post("/api/v1/posts", json={"title": "Daily"}, headers=headers(tok))
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert count(query_db, Post) == 2
    row = query_db(lambda s: s.query(IdempotencyKey).one())
    assert timedelta(hours=23) < row.expires_at - utcnow() <= timedelta(hours=24)

    from webapp.idempotency import purge_expired
    query_db(age)
    assert query_db(purge_expired) == 1


def test_a_bad_key_is_refused(client, make_user, token):
    tok = token(make_user())
    response = client.post("/api/v1/posts", json={"title": "T"}, headers=headers(tok, "x" * 300))
    assert response.status_code == 422


# --- /auth/* ignores the header ----------------------------------------------------------------

def test_auth_answers_are_never_stored_or_replayed(client, make_user, query_db):
    user = make_user()
    login = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD},
                        headers=headers(key="login"))
    assert login.status_code == 200
    again = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD},
                        headers=headers(key="login"))
    assert "Idempotent-Replayed" not in again.headers
    assert again.get_json()["refresh_token"] != login.get_json()["refresh_token"]  # a new session

    captured = {"refresh_token": login.get_json()["refresh_token"]}
    rotated = client.post("/api/v1/auth/refresh", json=captured, headers=headers(key="refresh"))
    assert rotated.status_code == 200
    replayed = client.post("/api/v1/auth/refresh", json=captured, headers=headers(key="refresh"))
    assert replayed.status_code == 401 and "Idempotent-Replayed" not in replayed.headers  # a spent token
    # reuse detection revoked the whole family: the pair the first refresh handed out is dead too
    fresh = rotated.get_json()
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]}).status_code == 401
    assert client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {fresh['access_token']}"}
                      ).status_code == 401
    assert count(query_db, IdempotencyKey) == 0


def test_the_openapi_documents_the_header_except_on_auth(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    ref = {"$ref": "#/components/parameters/IdempotencyKey"}
    assert ref in paths["/api/v1/posts"]["post"]["parameters"]
    assert ref in paths["/api/v1/users"]["post"]["parameters"]
    assert ref not in paths["/api/v1/auth/login"]["post"].get("parameters", [])
    assert ref not in paths["/api/v1/auth/refresh"]["post"].get("parameters", [])


# --- the cache and concurrency -----------------------------------------------------------------

def test_a_read_right_after_an_idempotent_write_sees_it(app, client, make_user, token):
    from webapp.extensions import cache

    tok = token(make_user())
    assert client.get("/api/v1/posts").get_json() == []  # the list and its total are cached now
    with app.app_context():
        version = int(cache.get("v:posts") or 0)
    created = client.post("/api/v1/posts", json={"title": "Seen", "published": True}, headers=headers(tok))
    assert [p["id"] for p in client.get("/api/v1/posts").get_json()] == [created.get_json()["id"]]
    client.post("/api/v1/posts", json={"title": "Seen", "published": True}, headers=headers(tok))  # a replay
    with app.app_context():
        assert int(cache.get("v:posts") or 0) == version + 1  # bumped once, at the one real commit


@pytest.mark.parametrize("clients", [4])
def test_concurrent_posts_with_one_key_perform_once(app, make_user, token, query_db, clients):
    tok = token(make_user())

    def post(_):
        return app.test_client().post("/api/v1/posts", json={"title": "Race"}, headers=headers(tok, "race"))

    with ThreadPoolExecutor(clients) as pool, writes_held(app, "posts", waiters=clients):
        futures = [pool.submit(post, n) for n in range(clients)]
    answers = [f.result() for f in futures]
    assert [a.status_code for a in answers] == [201] * clients
    assert len({a.get_json()["id"] for a in answers}) == 1
    assert sum("Idempotent-Replayed" not in a.headers for a in answers) == 1
    assert count(query_db, Post) == 1


def test_a_sign_up_that_loses_the_race_gets_the_winners_answer(app, query_db):
    body = {"name": "Racer", "email": "racer@example.com", "password": PASSWORD}

    def sign_up(_):
        return app.test_client().post("/api/v1/users", json=body, headers=headers(key="signup"))

    with ThreadPoolExecutor(2) as pool, writes_held(app, "users", waiters=2):
        futures = [pool.submit(sign_up, n) for n in range(2)]
    answers = [f.result() for f in futures]
    # the loser's unique email fails (409), a refusal, but the same key finished meanwhile: replayed
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].get_json() == answers[1].get_json()
    assert count(query_db, User) == 1


# --- with a real Celery worker (services mode) ---------------------------------------------------

@pytest.mark.services
def test_a_real_worker_sees_what_an_idempotent_request_committed(client, start_worker, make_user, token, query_db,
                                                                 outbox):
    """Tasks and emails go out after the one real commit, so the worker finds the rows it is given."""
    start_worker()
    admin = make_user(role="admin")
    tok = token(admin)
    first = client.post("/api/v1/jobs/user-export", json={"format": "json"}, headers=headers(tok, "export"))
    again = client.post("/api/v1/jobs/user-export", json={"format": "json"}, headers=headers(tok, "export"))
    assert first.status_code == again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    wait_for(lambda: client.get(first.headers["Location"], headers=headers(tok)).get_json()["status"] == "succeeded",
             timeout=30, what="the export, run by the worker")

    body = {"name": "Ann", "email": "ann@example.com", "password": PASSWORD}
    signed_up = [client.post("/api/v1/users", json=body, headers=headers(key="signup")) for _ in range(2)]
    assert [r.status_code for r in signed_up] == [201, 201]
    wait_for(lambda: outbox("ann@example.com"), timeout=30, what="the verification email")
    time.sleep(1)  # a duplicate would arrive now
    assert len(outbox("ann@example.com")) == 1
    assert count(query_db, Job) == 1 and count(query_db, User, email="ann@example.com") == 1
