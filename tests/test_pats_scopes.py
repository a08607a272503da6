"""Personal access tokens' scopes, in the one policy: `read` reads and every write is refused with
nothing changed, `write` writes as the user, no token manages tokens, passwords, sessions or MFA;
and a token's caller is its user for the rate limit and Idempotency-Key — through both doors."""
from __future__ import annotations

import io

from sqlalchemy import text

from tests.conftest import PASSWORD
from tests.pats_doors import (  # noqa: F401  (pat: a fixture)
    account_export,
    cancel_job,
    change_password,
    create,
    enroll_totp,
    list_sessions,
    my_tokens,
    pat,
    revoke,
    revoke_session,
    stored,
    tokens_of,
)
from webapp.posts.models import Post
from webapp.users.models import User

# --- used through both doors, with its scopes ---------------------------------------------------

def test_a_token_signs_requests_in_through_both_doors(door, make_user, pat):
    user = make_user()
    secret = pat(user)
    me = door.me(secret)
    assert me.ok and me.data["id"] == user.id and me.data["email"] == user.email


def test_read_scope_reads_and_every_write_is_forbidden_with_nothing_changed(door, make_user, token, pat, query_db):
    user, admin = make_user(), make_user(role="admin")
    post = door.create_post(token(user), title="Mine", content="as it was", published=True).data
    read = pat(user)
    admin_read = pat(admin)
    assert door.me(read).ok and door.list_users(read).ok and door.get_post(read, post["id"]).ok
    assert door.get_profile(read, user.id).ok and my_tokens(door, token(user)).ok
    refused = [
        door.update_user(read, user.id, name="Changed"),
        door.update_profile(read, user.id, bio="changed"),
        door.create_post(read, title="New", content="x", published=True),
        door.update_post(read, post["id"], title="Changed"),
        door.delete_post(read, post["id"]),
        door.resend_verification(read),
        account_export(door, read),
        door.delete_user(read, user.id),
        door.request_user_export(admin_read),
        door.update_user(admin_read, user.id, role="admin"),
    ]
    assert [outcome.status for outcome in refused] == ["forbidden"] * len(refused)
    if door.name == "rest":
        assert refused[0].data["message"] == "This personal access token has the read scope only: it cannot write."
        avatar = door.client.put(f"/api/v1/users/{user.id}/avatar", headers={"Authorization": f"Bearer {read}"},
                                 data={"file": (io.BytesIO(b"GIF89a"), "a.gif")}, content_type="multipart/form-data")
        assert avatar.status_code == 403
    else:
        assert refused[0].raw.get_json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    def state(s):
        stored_user = s.get(User, user.id)
        return (stored_user.name, stored_user.role, s.get(Post, post["id"]).title,
                s.scalar(text("SELECT count(*) FROM posts")), s.scalar(text("SELECT count(*) FROM jobs")),
                stored_user.profile.bio)
    assert query_db(state) == ("User 1", "user", "Mine", 1, 0, "")


def test_read_scope_cannot_cancel_a_job_but_its_session_can(door, make_user, token, pat):
    user = make_user()
    job = account_export(door, token(user))
    assert job.ok, job.data
    assert cancel_job(door, pat(user), job.data["id"]).status == "forbidden"
    assert door.get_job(pat(user), job.data["id"]).ok


def test_write_scope_writes_as_the_user_and_no_more(door, make_user, token, pat, query_db):
    user, other = make_user(), make_user()
    write = pat(user, scopes=("read", "write"))
    created = door.create_post(write, title="From a script", content="hello", published=True)
    assert created.ok and created.data["author"]["id"] == user.id
    assert door.update_user(write, user.id, name="Renamed").ok
    assert door.update_user(write, other.id, name="Not mine").status == "forbidden"
    assert door.update_user(write, user.id, role="admin").status == "forbidden"
    assert query_db(lambda s: (s.get(User, user.id).name, s.get(User, other.id).name,
                               s.get(User, user.id).role)) == ("Renamed", "User 2", "user")


def test_write_scope_alone_means_read_and_write(door, make_user, token):
    made = create(door, token(make_user()), scopes=("write",))
    assert made.ok and made.data["scopes"] == ["read", "write"]


def test_no_token_manages_tokens_passwords_sessions_or_mfa(door, make_user, login, pat, query_db):
    user = make_user()
    session = login(user)
    write = pat(user, scopes=("read", "write"))
    [row] = stored(query_db, user_id=user.id)
    sid = query_db(lambda s: s.scalar(text("SELECT id FROM auth_sessions")))
    refused = {
        "create": create(door, write), "list": my_tokens(door, write), "list of": tokens_of(door, write, user.id),
        "revoke": revoke(door, write, row.id), "password": change_password(door, write),
        "logout": door.logout(write), "sessions": list_sessions(door, write),
        "revoke session": revoke_session(door, write, sid), "mfa": enroll_totp(door, write),
    }
    assert {name: outcome.status for name, outcome in refused.items()} == {name: "forbidden" for name in refused}
    assert len(stored(query_db, user_id=user.id)) == 1 and door.me(write).ok
    assert door.me(session["access_token"]).ok  # the session was not signed out
    assert door.login(user.email, PASSWORD).ok  # nor the password changed

# --- what keys on the caller --------------------------------------------------------------------

def test_idempotency_keys_of_token_callers_are_their_own(client, make_user, token, query_db):
    first, second = make_user(), make_user()
    secrets = []
    for user in (first, second):
        made = client.post("/api/v1/users/me/tokens", json={"name": "n", "scopes": ["read", "write"]},
                           headers={"Authorization": f"Bearer {token(user)}"})
        secrets.append(made.get_json()["token"])
    answers = [client.post("/api/v1/posts", json={"title": "t", "content": "c", "published": True},
                           headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "same-key"})
               for secret in secrets]
    assert [a.status_code for a in answers] == [201, 201]
    assert "Idempotent-Replayed" not in answers[1].headers
    assert [a.get_json()["author"]["id"] for a in answers] == [first.id, second.id]


def test_the_rate_limit_counts_a_token_against_its_user_whatever_the_ip(tmp_path):
    from conf.settings import TestingConfig
    from webapp import create_app
    from webapp.cli import upgrade
    from webapp.extensions import db
    from webapp.users.services import create_user

    config = TestingConfig().override(INSTANCE_PATH=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'rl.db'}",
                                      REDIS_URL="", RATELIMIT_DEFAULT="4/minute", TRUSTED_PROXIES=1)
    app = create_app(config)
    with app.app_context():
        upgrade()
        create_user(db.session, name="Scripted", email="scripted@example.com", password=PASSWORD)
        db.session.remove()
    client = app.test_client()
    client.environ_base["HTTP_X_FORWARDED_FOR"] = "10.0.0.1"
    session = client.post("/api/v1/auth/login", json={"email": "scripted@example.com", "password": PASSWORD})
    made = client.post("/api/v1/users/me/tokens", json={"name": "n", "scopes": ["read"]},
                       headers={"Authorization": f"Bearer {session.get_json()['access_token']}"}).get_json()
    statuses = []
    for n in range(2, 6):  # the user's budget (4) already paid for the token's creation
        client.environ_base["HTTP_X_FORWARDED_FOR"] = f"10.0.0.{n}"
        answer = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {made['token']}"})
        statuses.append(answer.status_code)
    assert statuses == [200, 200, 200, 429]
    client.environ_base["HTTP_X_FORWARDED_FOR"] = "10.0.0.9"  # a refused token is counted by its IP
    wrong = made["token"][:-1] + ("A" if made["token"][-1] != "A" else "B")
    assert client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
