"""Sign-in, token rotation with reuse detection, sign-out and token failures."""
from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import jwt as pyjwt
import pytest

from tests.conftest import PASSWORD


def test_login_returns_a_bearer_pair(door, make_user):
    user = make_user()
    outcome = door.login(user.email.upper(), PASSWORD)
    assert outcome.ok
    assert set(outcome.data) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert outcome.data["token_type"] == "bearer"
    assert outcome.data["expires_in"] == 15 * 60


def test_unknown_email_and_wrong_password_look_the_same(door, make_user):
    user = make_user()
    unknown = door.login("nobody@example.com", PASSWORD)
    wrong = door.login(user.email, "wrong password!")
    assert unknown.status == wrong.status == "unauthenticated"
    if door.name == "rest":
        assert unknown.raw.status_code == wrong.raw.status_code == 401
        assert unknown.data == wrong.data
    else:
        assert unknown.data[0]["message"] == wrong.data[0]["message"]


def test_inactive_user_cannot_log_in(door, make_user, client, token):
    admin = make_user(role="admin")
    user = make_user()
    client.patch(f"/api/v1/users/{user.id}", json={"is_active": False},
                 headers={"Authorization": f"Bearer {token(admin)}"})
    assert door.login(user.email, PASSWORD).status == "unauthenticated"


def test_refresh_rotates_and_reuse_revokes_the_family(door, make_user):
    user = make_user()
    first = door.login(user.email, PASSWORD).data
    second = door.refresh(first["refresh_token"])
    assert second.ok
    assert second.data["refresh_token"] != first["refresh_token"]
    assert door.me(second.data["access_token"]).ok

    # the spent token is refused, and the whole family dies with it
    assert door.refresh(first["refresh_token"]).status == "unauthenticated"
    assert door.refresh(second.data["refresh_token"]).status == "unauthenticated"
    assert door.me(second.data["access_token"]).status == "unauthenticated"


def test_reuse_leaves_other_sessions_alone(door, make_user):
    user = make_user()
    phone = door.login(user.email, PASSWORD).data
    laptop = door.login(user.email, PASSWORD).data
    door.refresh(phone["refresh_token"])
    door.refresh(phone["refresh_token"])  # reuse: phone's family is revoked
    assert door.me(laptop["access_token"]).ok


def test_refresh_token_as_bearer_header(client, login, make_user):
    tokens = login(make_user())
    response = client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert response.status_code == 200
    assert response.get_json()["token_type"] == "bearer"


def test_refresh_without_token_is_401(client):
    response = client.post("/api/v1/auth/refresh", json={})
    assert response.status_code == 401
    assert response.get_json()["code"] == 401


def test_logout_kills_access_and_refresh_at_once(door, make_user):
    user = make_user()
    tokens = door.login(user.email, PASSWORD).data
    assert door.logout(tokens["access_token"]).ok
    assert door.me(tokens["access_token"]).status == "unauthenticated"
    assert door.refresh(tokens["refresh_token"]).status == "unauthenticated"


def test_password_change_revokes_other_sessions(client, login, make_user, door):
    user = make_user()
    this, other = login(user), login(user)
    response = client.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": "brand new secret"},
                           headers={"Authorization": f"Bearer {this['access_token']}"})
    assert response.status_code == 204
    assert door.me(this["access_token"]).ok
    assert door.me(other["access_token"]).status == "unauthenticated"
    assert door.refresh(other["refresh_token"]).status == "unauthenticated"
    assert door.login(user.email, PASSWORD).status == "unauthenticated"
    assert door.login(user.email, "brand new secret").ok


def test_password_change_checks_the_current_password(client, token, make_user):
    user = make_user()
    response = client.post("/api/v1/auth/password", json={"current_password": "not it at all", "new_password": "brand new secret"},
                           headers={"Authorization": f"Bearer {token(user)}"})
    assert response.status_code == 403
    assert "current_password" in response.get_json()["errors"]


@pytest.mark.parametrize("password", ["short", "x" * 129])
def test_password_length_is_8_to_128(door, password):
    outcome = door.signup("Pat", "pat@example.com", password)
    assert outcome.status == "bad_input"


def test_deactivated_user_loses_access_at_once(door, make_user, token):
    admin, user = make_user(role="admin"), make_user()
    user_token = token(user)
    assert door.me(user_token).ok
    assert door.update_user(token(admin), user.id, is_active=False).ok
    assert door.me(user_token).status == "unauthenticated"


def test_demoted_admin_loses_admin_rights_at_once(door, make_user, token):
    boss, other = make_user(role="admin"), make_user(role="admin")
    other_token = token(other)
    victim = make_user()
    assert door.update_user(token(boss), other.id, role="user").ok
    assert door.update_user(other_token, victim.id, name="Renamed").status == "forbidden"


def _forge(claims: dict, key: str, alg: str = "HS256") -> str:
    return pyjwt.encode(claims, key, algorithm=alg)


def _claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _none_alg(claims: dict) -> str:
    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def test_tokens_carry_no_personal_data(login, make_user):
    user = make_user(email="private.person@example.com", name="Private Person")
    tokens = login(user)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        claims = _claims_of(token)
        assert "private.person" not in json.dumps(claims)
        assert "Private Person" not in json.dumps(claims)
        assert claims["sub"] == str(user.id)


@pytest.mark.parametrize("case", ["missing", "malformed", "bad_signature", "alg_none", "refresh_as_access",
                                  "access_as_refresh", "expired", "revoked", "garbage_scheme"])
def test_every_token_failure_is_401_with_the_error_shape(case, app, client, login, make_user):
    tokens = login(make_user())
    claims = _claims_of(tokens["access_token"])
    path, method, headers, body = "/api/v1/users/me", "GET", {}, None
    if case == "malformed":
        headers = {"Authorization": "Bearer not.a.jwt"}
    elif case == "bad_signature":
        headers = {"Authorization": f"Bearer {_forge(claims, 'another-secret-that-is-long-enough-32')}"}
    elif case == "alg_none":
        headers = {"Authorization": f"Bearer {_none_alg(claims)}"}
    elif case == "refresh_as_access":
        headers = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    elif case == "access_as_refresh":
        path, method, body = "/api/v1/auth/refresh", "POST", {"refresh_token": tokens["access_token"]}
    elif case == "expired":
        expired = {**claims, "exp": int(time.time()) - 10, "iat": int(time.time()) - 1000}
        headers = {"Authorization": f"Bearer {_forge(expired, app.config['JWT_SECRET_KEY'])}"}
    elif case == "revoked":
        client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    elif case == "garbage_scheme":
        headers = {"Authorization": "Basic dXNlcjpwYXNz"}
    response = client.open(path, method=method, headers=headers, json=body)
    assert response.status_code == 401, response.get_json()
    body = response.get_json()
    assert body["code"] == 401 and body["status"] == "Unauthorized" and body["message"]
    assert "msg" not in body


def test_graphql_reports_bad_tokens_as_unauthenticated(client, login, make_user):
    tokens = login(make_user())
    for bad in ("not.a.jwt", tokens["refresh_token"]):
        body = client.post("/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": f"Bearer {bad}"}).get_json()
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_refresh_lifetime_is_absolute(app, login, make_user):
    tokens = login(make_user())
    claims = _claims_of(tokens["refresh_token"])
    assert abs(claims["exp"] - claims["iat"] - timedelta(days=14).total_seconds()) < 5
    access = _claims_of(tokens["access_token"])
    assert access["exp"] - access["iat"] == 15 * 60


def test_production_hash_parameters_meet_owasp():
    from webapp.auth.passwords import Passwords
    from conf.settings import ProductionConfig

    config = ProductionConfig()
    hasher = Passwords()
    hasher.configure(time_cost=config.ARGON2_TIME_COST, memory_kib=config.ARGON2_MEMORY_KIB,
                     parallelism=config.ARGON2_PARALLELISM)
    params = hasher.parameters
    assert params["memory_kib"] >= 19 * 1024 and params["time_cost"] >= 2 and params["parallelism"] >= 1
    assert hasher.hash("some password").startswith("$argon2id$")


def test_stored_password_is_an_argon2id_hash(make_user, query_db):
    from webapp.users.models import User

    user = make_user()
    stored = query_db(lambda s: s.get(User, user.id).password_hash)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


FIRST_REQUEST = """
import json, sys
from conf.settings import TestingConfig
from webapp import create_app

settings = json.loads(sys.argv[1])
app = create_app(TestingConfig().override(**settings))
headers = {"Authorization": "Bearer " + sys.argv[2]}
if sys.argv[3] == "rest":
    answer = app.test_client().get("/api/v1/users/me", headers=headers)
else:
    answer = app.test_client().post("/graphql", headers=headers,
                                    json={"query": "{ me { id email profile { bio } } }"})
print(json.dumps({"status": answer.status_code, "body": answer.get_json()}))
"""


@pytest.mark.parametrize("door_name", ["rest", "graphql"])
def test_a_fresh_worker_can_answer_a_signed_in_read_first(app, make_user, token, door_name, tmp_path):
    """A new worker's very first request may be an authenticated read, before any ORM query ran
    in that process: the caller is still found (regression: 500 from unconfigured mappers)."""
    import subprocess
    import sys

    from tests.servers import ROOT

    user = make_user()
    access = token(user)
    settings = {"DATABASE_URL": app.config["DATABASE_URL"], "JWT_SECRET_KEY": app.config["JWT_SECRET_KEY"],
                "SECRET_KEY": app.config["SECRET_KEY"], "INSTANCE_PATH": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", FIRST_REQUEST, json.dumps(settings), access, door_name],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200, answer
    me = answer["body"] if door_name == "rest" else answer["body"]["data"]["me"]
    assert (int(me["id"]), me["email"]) == (user.id, user.email)
