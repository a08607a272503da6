"""Personal access tokens (PRODUCT.md "Identity"): made from a session, shown once, stored hashed,
refused when revoked (at once, on every host), expired or wrong — through both doors.
Scopes and what keys on a token's caller: tests/test_pats_scopes.py."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from tests.conftest import PASSWORD
from tests.pats_doors import create, my_tokens, pat, revoke, stored, tokens_of  # noqa: F401  (pat: a fixture)
from tests.servers import gunicorns  # noqa: F401  (the two-host test starts its servers)
from webapp.db import utcnow
from webapp.pats.models import PersonalAccessToken
from webapp.users.models import User

# --- made, shown once, stored hashed -----------------------------------------------------------

def test_a_new_token_is_shown_once_and_no_list_shows_it_again(door, make_user, token):
    user = make_user()
    session_token = token(user)
    made = create(door, session_token, name="CI deploy", scopes=("read", "write"), days=7)
    assert made.ok, made.data
    data = made.data
    assert data["token"].startswith("dlt_pat_") and len(data["token"]) == 64
    assert data["name"] == "CI deploy" and data["scopes"] == ["read", "write"] and data["last_used_at"] is None
    assert data["token"].startswith(data["prefix"])
    listed = my_tokens(door, session_token)
    assert listed.ok and [t["id"] for t in listed.data] == [data["id"]]
    assert "token" not in listed.data[0]
    secret = data["token"].rsplit("_", 1)[1]
    assert secret not in str(listed.raw.get_data(as_text=True))
    assert set(listed.data[0]) == {"id", "name", "scopes", "prefix", "created_at", "expires_at", "last_used_at"}


def test_the_database_holds_only_the_sha256_of_the_secret(client, make_user, token, query_db):
    user = make_user()
    made = client.post("/api/v1/users/me/tokens", json={"name": "n", "scopes": ["read"]},
                       headers={"Authorization": f"Bearer {token(user)}"}).get_json()
    secret = made["token"].rsplit("_", 1)[1]
    [row] = stored(query_db, user_id=user.id)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    dump = query_db(lambda s: [tuple(r) for r in s.execute(text("SELECT * FROM personal_access_tokens"))])
    assert secret not in repr(dump) and made["token"] not in repr(dump)
    # and it expires after 30 days when no lifetime is asked for
    assert timedelta(days=29, hours=23) < row.expires_at - row.created_at <= timedelta(days=30)


@pytest.mark.parametrize("body, field", [
    ({"name": "", "scopes": ["read"]}, "name"),
    ({"name": "   ", "scopes": ["read"]}, "name"),
    ({"name": "x" * 101, "scopes": ["read"]}, "name"),
    ({"name": "n", "scopes": []}, "scopes"),
    ({"name": "n", "scopes": ["admin"]}, "scopes"),
    ({"name": "n", "scopes": ["read"], "expires_in_days": 0}, "expires_in_days"),
    ({"name": "n", "scopes": ["read"], "expires_in_days": 366}, "expires_in_days"),
])
def test_bad_input_is_refused_and_nothing_is_made(door, make_user, token, query_db, body, field):
    user = make_user()
    outcome = create(door, token(user), body["name"], body["scopes"], body.get("expires_in_days"))
    assert outcome.status == "bad_input", outcome.data
    if door.name == "rest":
        assert field in outcome.data["errors"]
    assert stored(query_db, user_id=user.id) == []


def test_a_user_may_hold_only_so_many_tokens(app, door, make_user, token, monkeypatch):
    monkeypatch.setitem(app.config, "PAT_MAX_PER_USER", 2)
    user = make_user()
    session_token = token(user)
    assert create(door, session_token).ok and create(door, session_token).ok
    assert create(door, session_token).status == "conflict"

# --- refused tokens -----------------------------------------------------------------------------

def test_a_revoked_token_is_refused_at_once(door, make_user, token, pat):
    user = make_user()
    secret = pat(user)
    [listed] = my_tokens(door, token(user)).data
    assert door.me(secret).ok
    assert revoke(door, token(user), listed["id"]).ok
    assert door.me(secret).status == "unauthenticated"
    assert revoke(door, token(user), listed["id"]).status == "not_found"


def test_an_expired_token_is_refused(door, make_user, pat, query_db):
    user = make_user()
    secret = pat(user, days=1)
    query_db(lambda s: (s.execute(update(PersonalAccessToken).values(expires_at=utcnow() - timedelta(seconds=1))),
                        s.commit()))
    outcome = door.me(secret)
    assert outcome.status == "unauthenticated"
    message = outcome.data["message"] if door.name == "rest" else outcome.data[0]["message"]
    assert message == "Token has expired."


def test_a_deactivated_users_tokens_stop_working(door, make_user, pat, query_db):
    user = make_user()
    secret = pat(user)
    query_db(lambda s: (s.execute(update(User).where(User.id == user.id).values(is_active=False)), s.commit()))
    assert door.me(secret).status == "unauthenticated"


def test_malformed_unknown_and_wrong_secret_tokens_get_the_same_401(door, make_user, pat):
    user = make_user()
    good = pat(user)
    prefix, secret = good.rsplit("_", 1)
    wrong_secret = f"{prefix}_{'A' * len(secret)}"
    unknown = f"dlt_pat_{'b' * 12}_{secret}"
    answers = []
    for bad in ("dlt_pat_", "dlt_pat_short", good + "x", f"{prefix}_{secret[:-1]}-", unknown, wrong_secret):
        outcome = door.me(bad)
        assert outcome.status == "unauthenticated", bad
        if door.name == "rest":
            assert outcome.raw.headers["WWW-Authenticate"] == "Bearer"
            answers.append(outcome.data)
        else:
            answers.append(outcome.data[0]["message"])
    assert all(answer == answers[0] for answer in answers)
    assert door.me(good).ok


def test_a_refused_token_on_an_open_list_is_still_a_401(door, make_user, pat):
    outcome = door.list_posts(pat(make_user())[:-1] + "!")
    assert outcome.status == "unauthenticated"


# --- admins and everyone else -------------------------------------------------------------------

def test_an_admin_lists_and_revokes_anyones_tokens(door, make_user, token, pat):
    user, admin = make_user(), make_user(role="admin")
    secret = pat(user)
    listed = tokens_of(door, token(admin), user.id)
    assert listed.ok and len(listed.data) == 1 and "token" not in listed.data[0]
    assert revoke(door, token(admin), listed.data[0]["id"], user_id=user.id).ok
    assert door.me(secret).status == "unauthenticated"
    assert tokens_of(door, token(admin), user.id).data == []
    assert tokens_of(door, token(admin), 999_999).status == "not_found"


def test_nobody_else_sees_or_revokes_a_users_tokens(door, make_user, token, pat):
    owner, other = make_user(), make_user()
    secret = pat(owner)
    [listed] = my_tokens(door, token(owner)).data
    assert tokens_of(door, token(other), owner.id).status == "not_found"
    assert revoke(door, token(other), listed["id"]).status == "not_found"
    assert revoke(door, token(other), listed["id"], user_id=owner.id).status == "not_found"
    assert my_tokens(door, token(other)).data == []
    assert door.me(secret).ok


def test_an_admins_token_cannot_manage_tokens_either(door, make_user, pat):
    user, admin = make_user(), make_user(role="admin")
    pat(user)
    admin_write = pat(admin, scopes=("read", "write"))
    assert tokens_of(door, admin_write, user.id).status == "forbidden"


# --- last_used_at -------------------------------------------------------------------------------

def test_last_used_at_is_written_at_most_once_a_minute(door, make_user, pat, query_db):
    user = make_user()
    secret = pat(user)
    [row] = stored(query_db, user_id=user.id)
    assert row.last_used_at is None
    assert door.me(secret).ok
    [first] = stored(query_db, user_id=user.id)
    assert first.last_used_at is not None
    assert door.me(secret).ok and door.me(secret).ok
    assert stored(query_db, user_id=user.id)[0].last_used_at == first.last_used_at
    a_minute_ago = utcnow() - timedelta(seconds=61)
    query_db(lambda s: (s.execute(update(PersonalAccessToken).values(last_used_at=a_minute_ago)), s.commit()))
    assert door.me(secret).ok
    assert stored(query_db, user_id=user.id)[0].last_used_at > a_minute_ago

# --- two hosts ----------------------------------------------------------------------------------

@pytest.mark.services
def test_a_token_revoked_on_one_host_is_refused_by_the_other_at_once(gunicorns, redis_url, make_user):
    import requests

    from tests.servers import services_urls

    db_url, _ = services_urls()
    host_a = gunicorns("a", DATABASE_URL=db_url, REDIS_URL=redis_url, CELERY_QUEUE_PREFIX="pats-")
    host_b = gunicorns("b", DATABASE_URL=db_url, REDIS_URL=redis_url, CELERY_QUEUE_PREFIX="pats-")
    user = make_user()
    signed_in = requests.post(f"{host_a.base}/api/v1/auth/login", json={"email": user.email, "password": PASSWORD},
                              timeout=10).json()
    session = {"Authorization": f"Bearer {signed_in['access_token']}"}
    made = requests.post(f"{host_a.base}/api/v1/users/me/tokens", json={"name": "n", "scopes": ["read"]},
                         headers=session, timeout=10).json()
    secret = {"Authorization": f"Bearer {made['token']}"}
    graphql = {"query": "{ me { id } }"}
    assert requests.get(f"{host_b.base}/api/v1/users/me", headers=secret, timeout=10).json()["id"] == user.id
    assert requests.post(f"{host_b.base}/graphql", json=graphql, headers=secret, timeout=10).json()["data"]["me"]
    assert requests.delete(f"{host_a.base}/api/v1/users/me/tokens/{made['id']}", headers=session,
                           timeout=10).status_code == 204
    assert requests.get(f"{host_b.base}/api/v1/users/me", headers=secret, timeout=10).status_code == 401
    answer = requests.post(f"{host_b.base}/graphql", json=graphql, headers=secret, timeout=10).json()
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

