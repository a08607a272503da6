"""Issue 16, point 7: no-store on tokens and exports, CORS a browser can use, the password-change
lockout, NFKC-normalised emails and tokens that must expire. Through both doors where both apply."""
from __future__ import annotations

import base64
import io
import json

import jwt as pyjwt
import pytest

from conf.settings import TestingConfig as Settings
from tests.conftest import PASSWORD
from tests.doors import DOORS, GraphQLDoor, RestDoor, bearer
from webapp import create_app
from webapp.cli import upgrade
from webapp.extensions import db
from webapp.users.models import User
from webapp.users.services import create_user


def _claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# --- Cache-Control: no-store on what holds live tokens or personal data -------------------------

def test_login_and_refresh_answers_are_never_stored(door, make_user):
    user = make_user()
    login = door.login(user.email, PASSWORD)
    assert login.ok and login.raw.headers["Cache-Control"] == "no-store"
    refreshed = door.refresh(login.data["refresh_token"])
    assert refreshed.ok and refreshed.raw.headers["Cache-Control"] == "no-store"
    failed = door.login(user.email, "wrong password!")  # refusals too: nothing under these paths is kept
    assert failed.status == "unauthenticated" and failed.raw.headers["Cache-Control"] == "no-store"


def test_refresh_by_bearer_header_is_never_stored(client, login, make_user):
    tokens = login(make_user())
    response = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


def test_the_personal_data_export_download_is_never_stored(client, make_user, token):
    access = token(make_user())
    job = client.post("/api/v1/users/me/export", headers=bearer(access)).get_json()
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(access)).get_json()["status"] == "succeeded"
    response = client.get(f"/api/v1/jobs/{job['id']}/result", headers=bearer(access))
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "attachment" in response.headers["Content-Disposition"]


# --- CORS: Vary: Origin and the headers a browser script may read ------------------------------

EXPOSED = {"ETag", "Location", "X-Pagination", "X-Next-Cursor", "Link", "Retry-After", "X-Request-ID",
           "Idempotent-Replayed", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}
ORIGIN = "https://app.example.com"


@pytest.fixture
def cors_client(tmp_path):
    app = create_app(Settings().override(INSTANCE_PATH=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}",
                                         CORS_ORIGINS=[ORIGIN]))
    with app.app_context():
        upgrade()
        create_user(db.session, name="Cora", email="cora@example.com", password=PASSWORD)
        db.session.remove()
    return app.test_client()


def _vary(response) -> set[str]:
    return {value.strip() for line in response.headers.getlist("Vary") for value in line.split(",")}


def test_cors_answers_expose_the_headers_clients_read_and_vary_on_origin(cors_client):
    headers = {"Origin": ORIGIN}
    answers = [cors_client.get("/api/v1/posts", headers=headers),
               cors_client.post("/graphql", json={"query": "{ __typename }"}, headers=headers),
               cors_client.get("/api/v1/users/me", headers=headers)]  # an error answer too
    for response in answers:
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        exposed = {name.strip() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
        assert EXPOSED <= exposed, EXPOSED - exposed
        assert "Origin" in _vary(response)
    token = RestDoor(cors_client).login("cora@example.com", PASSWORD).data["access_token"]
    private = cors_client.get("/api/v1/users/me", headers={**headers, **bearer(token)})
    assert private.status_code == 200 and _vary(private) >= {"Authorization", "Origin"}
    assert len(private.headers.getlist("Vary")) == 1


def test_cors_preflight_and_other_origins_still_vary_on_origin(cors_client):
    preflight = cors_client.options("/api/v1/posts",
                                    headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN and "Origin" in _vary(preflight)
    # A cache must not hand this answer (no Allow-Origin) to the allowed origin, nor the reverse.
    other = cors_client.get("/api/v1/posts", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers and "Origin" in _vary(other)


def test_without_cors_origins_there_is_no_cors_and_no_vary_origin(client):
    response = client.get("/api/v1/posts", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers and "Origin" not in _vary(response)


# --- Wrong current passwords count as failed logins ---------------------------------------------

@pytest.fixture
def lockable(tmp_path):
    """An app where three failed logins (or wrong current passwords) lock an account for a minute."""
    config = Settings().override(INSTANCE_PATH=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'l.db'}",
                                 RATELIMIT_LOGIN_FAILURES="3/minute")
    app = create_app(config)
    with app.app_context():
        upgrade()
        for name in ("alice", "bob"):
            create_user(db.session, name=name.title(), email=f"{name}@example.com", password=PASSWORD)
        db.session.remove()
    return app.test_client()


def _change_password(client, access, current):
    return client.post("/api/v1/auth/password", headers=bearer(access),
                       json={"current_password": current, "new_password": "a brand new passphrase"})


@pytest.mark.parametrize("door_name", sorted(DOORS))
def test_wrong_current_passwords_lock_the_account_like_failed_logins(lockable, door_name):
    door = DOORS[door_name](lockable)
    access = door.login("alice@example.com", PASSWORD).data["access_token"]
    assert door.login("alice@example.com", "wrong password!").status == "unauthenticated"  # counts: 1
    for _ in range(2):  # 2, 3
        wrong = _change_password(lockable, access, "not my password")
        assert wrong.status_code == 403 and wrong.get_json()["errors"]["current_password"]
    locked = _change_password(lockable, access, PASSWORD)  # even the right one waits now
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    assert locked.get_json()["code"] == 429
    outcome = door.login("alice@example.com", PASSWORD)
    assert outcome.status == "rate_limited"
    assert door.login("bob@example.com", PASSWORD).ok  # another account is not affected
    assert door.me(access).ok  # the session itself still works; only password proofs wait


def test_wrong_current_passwords_alone_lock_login(lockable):
    door = RestDoor(lockable)
    access = door.login("alice@example.com", PASSWORD).data["access_token"]
    assert [_change_password(lockable, access, "nope nope").status_code for _ in range(4)] == [403, 403, 403, 429]
    assert door.login("alice@example.com", PASSWORD).status == "rate_limited"
    assert GraphQLDoor(lockable).login("alice@example.com", PASSWORD).status == "rate_limited"


# --- Email addresses: NFKC, then lower-cased, wherever they enter ------------------------------

FULLWIDTH_ALICE = "\uff41lice@\uff25xample.com"  # ａlice@Ｅxample.com


def test_a_fullwidth_address_is_the_same_account(door, make_user, query_db):
    alice = make_user(email="alice@example.com")
    assert door.signup("Twin", FULLWIDTH_ALICE, PASSWORD).status == "conflict"
    assert door.login(FULLWIDTH_ALICE, PASSWORD).ok
    created = door.signup("Bob", "\uff22\uff4fb@example.com", PASSWORD)  # Ｂｏb@
    assert created.ok and created.data["email"] == "bob@example.com"
    assert query_db(lambda s: s.query(User).count()) == 2
    assert alice.email == "alice@example.com"


def test_an_update_to_a_fullwidth_address_is_normalised_and_conflicts(door, make_user, login):
    make_user(email="alice@example.com")
    bob = make_user(email="bob@example.com")
    access = login(bob)["access_token"]
    assert door.update_user(access, bob.id, email=FULLWIDTH_ALICE).status == "conflict"
    changed = door.update_user(access, bob.id, email="\uff42ob2@example.com")
    assert changed.ok and changed.data["email"] == "bob2@example.com"


def test_a_password_reset_for_a_fullwidth_address_reaches_the_account(door, make_user, outbox):
    make_user(email="alice@example.com")
    assert door.request_password_reset(FULLWIDTH_ALICE).ok
    resets = [m for m in outbox("alice@example.com") if m["Subject"] == "Reset your password"]
    assert len(resets) == 1


def test_an_import_row_with_a_fullwidth_address_is_the_existing_user(client, make_user, token):
    make_user(email="alice@example.com")
    admin = token(make_user(role="admin"))
    csv_file = io.BytesIO(f"name,email\nTwin,{FULLWIDTH_ALICE}\nCy,\uff43y@example.com\n".encode())
    job = client.post("/api/v1/jobs/user-import", data={"file": (csv_file, "u.csv")},
                      content_type="multipart/form-data", headers=bearer(admin)).get_json()
    report = client.get(f"/api/v1/jobs/{job['id']}/result", headers=bearer(admin)).get_json()
    assert (report["created"], report["rejected"]) == (1, 1)
    rows = {row["row"]: row for row in report["rows"]}
    assert rows[2]["status"] == "rejected" and rows[2]["email"] == "alice@example.com"
    assert rows[3]["status"] == "created" and rows[3]["email"] == "cy@example.com"


# --- Tokens must expire -------------------------------------------------------------------------

def _sign(claims: dict, app) -> str:
    return pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm=app.config.get("JWT_ALGORITHM", "HS256"))


def _without_exp(token: str, app) -> str:
    """The token's own claims but `exp`, signed with the app's secret."""
    return _sign({key: value for key, value in _claims_of(token).items() if key != "exp"}, app)


def _resigned(token: str, app) -> str:
    """The same claims, exp included, signed again: the control that the forging itself is sound."""
    return _sign(_claims_of(token), app)


def test_an_access_token_without_exp_is_refused(door, app, login, make_user):
    tokens = login(make_user())
    assert "exp" not in _claims_of(_without_exp(tokens["access_token"], app))
    outcome = door.me(_without_exp(tokens["access_token"], app))
    assert outcome.status == "unauthenticated"
    if door.name == "rest":
        body = outcome.raw.get_json()
        assert outcome.raw.status_code == 401 and body["code"] == 401 and body["status"] == "Unauthorized"
    assert door.me(_resigned(tokens["access_token"], app)).ok


def test_a_refresh_token_without_exp_is_refused(door, app, login, make_user):
    tokens = login(make_user())
    outcome = door.refresh(_without_exp(tokens["refresh_token"], app))
    assert outcome.status == "unauthenticated"
    if door.name == "rest":
        assert outcome.raw.status_code == 401 and outcome.raw.get_json()["code"] == 401
    assert door.refresh(_resigned(tokens["refresh_token"], app)).ok  # refused without spending the family
