"""Idempotency-Key: a POST is performed once per caller and key; replays return the first response."""
from __future__ import annotations

from datetime import timedelta

from tests.conftest import PASSWORD
from webapp.db import utcnow
from webapp.idempotency.models import IdempotencyKey
from webapp.posts.models import Post
from webapp.users.models import User


def headers(tok=None, key="key-1"):
    result = {"Idempotency-Key": key}
    if tok:
        result["Authorization"] = f"Bearer {tok}"
    return result


def test_a_repeated_post_is_performed_once(client, make_user, token, query_db):
    tok = token(make_user())
    first = client.post("/api/v1/posts", json={"title": "Once"}, headers=headers(tok))
    second = client.post("/api/v1/posts", json={"title": "Once"}, headers=headers(tok))
    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert query_db(lambda s: s.query(Post).count()) == 1


def test_the_same_key_with_another_body_is_422(client, make_user, token, query_db):
    tok = token(make_user())
    assert client.post("/api/v1/posts", json={"title": "A"}, headers=headers(tok)).status_code == 201
    response = client.post("/api/v1/posts", json={"title": "B"}, headers=headers(tok))
    assert response.status_code == 422 and "Idempotency-Key" in response.get_json()["errors"]
    assert query_db(lambda s: s.query(Post).count()) == 1


def test_keys_belong_to_their_caller(client, make_user, token, query_db):
    alice, bob = token(make_user()), token(make_user())
    client.post("/api/v1/posts", json={"title": "Same"}, headers=headers(alice))
    response = client.post("/api/v1/posts", json={"title": "Same"}, headers=headers(bob))
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert query_db(lambda s: s.query(Post).count()) == 2


def test_sign_up_is_idempotent_too(client, query_db):
    body = {"name": "Ann", "email": "ann@example.com", "password": PASSWORD}
    first = client.post("/api/v1/users", json=body, headers=headers())
    second = client.post("/api/v1/users", json=body, headers=headers())
    assert first.status_code == second.status_code == 201 and first.get_json() == second.get_json()
    assert query_db(lambda s: s.query(User).count()) == 1
    # without the header the same request is a conflict, as always
    assert client.post("/api/v1/users", json=body).status_code == 409


def test_error_responses_are_replayed_but_server_errors_and_401_are_not_kept(client, make_user, token, query_db):
    unverified = token(make_user(verified=False))
    first = client.post("/api/v1/posts", json={"title": "X"}, headers=headers(unverified, "k403"))
    again = client.post("/api/v1/posts", json={"title": "X"}, headers=headers(unverified, "k403"))
    assert first.status_code == again.status_code == 403 and again.headers["Idempotent-Replayed"] == "true"
    assert client.post("/api/v1/posts", json={"title": "X"}, headers=headers(None, "k401")).status_code == 401
    assert query_db(lambda s: s.query(IdempotencyKey).filter_by(key="k401").count()) == 0


def test_keys_expire_after_a_day(client, make_user, token, query_db, app):
    tok = token(make_user())
    client.post("/api/v1/posts", json={"title": "Daily"}, headers=headers(tok))

    def age(session):
        for row in session.query(IdempotencyKey):
            row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()

    query_db(age)
    response = client.post("/api/v1/posts", json={"title": "Daily"}, headers=headers(tok))
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert query_db(lambda s: s.query(Post).count()) == 2
    row = query_db(lambda s: s.query(IdempotencyKey).one())
    assert timedelta(hours=23) < row.expires_at - utcnow() <= timedelta(hours=24)

    from webapp.idempotency import purge_expired
    query_db(age)
    assert query_db(purge_expired) == 1


def test_a_key_still_in_progress_is_409(client, make_user, token, query_db, app):
    from webapp.idempotency import _fingerprint

    user = make_user()
    tok = token(user)
    with app.test_request_context("/api/v1/posts", method="POST", json={"title": "T"}):
        fingerprint = _fingerprint()

    def claim(session):
        session.add(IdempotencyKey(caller=f"user:{user.id}", key="busy", fingerprint=fingerprint,
                                   expires_at=utcnow() + timedelta(hours=1)))
        session.commit()

    query_db(claim)
    response = client.post("/api/v1/posts", json={"title": "T"}, headers=headers(tok, "busy"))
    assert response.status_code == 409 and response.headers["Retry-After"]
    assert query_db(lambda s: s.query(Post).count()) == 0


def test_a_bad_key_is_refused(client, make_user, token):
    tok = token(make_user())
    response = client.post("/api/v1/posts", json={"title": "T"}, headers=headers(tok, "x" * 300))
    assert response.status_code == 422
