"""Two-factor sign-in with TOTP (PRODUCT.md "Identity"), through both doors.

Codes come from pyotp at chosen times, as an authenticator app whose clock is off by a step would
make them. `steady()` starts a scenario well inside a 30-second step, so the server, checking a
moment later, is in the same step as the test (no assertion depends on how long anything takes).
"""
from __future__ import annotations

import time
import uuid
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest
import requests
from sqlalchemy import select

from conf.settings import TestingConfig as Settings
from tests.conftest import PASSWORD
from tests.doors import TOKEN_FIELDS, GraphQLDoor, RestDoor
from tests.servers import gunicorns, services_urls  # noqa: F401  (the fixture)
from webapp import create_app
from webapp.cli import upgrade
from webapp.extensions import db

STEP = 30


class RestMfa(RestDoor):
    def enroll(self, token):
        return self._call("POST", "/auth/mfa/totp", token)

    def confirm(self, token, code):
        return self._call("POST", "/auth/mfa/totp/confirm", token, json={"code": code})

    def verify(self, mfa_token, code=None, recovery_code=None):
        body = {"mfa_token": mfa_token, "code": code, "recovery_code": recovery_code}
        return self._call("POST", "/auth/mfa/verify", json={k: v for k, v in body.items() if v is not None})

    def disable(self, token, **proof):
        return self._call("DELETE", "/auth/mfa/totp", token, json=proof)


class GraphQLMfa(GraphQLDoor):
    def login(self, email, password):
        return self.query(f"mutation($e: String!, $p: String!) {{ login(email: $e, password: $p) "
                          f"{{ mfaRequired mfaToken {TOKEN_FIELDS} }} }}", {"e": email, "p": password}, key="login")

    def enroll(self, token):
        return self.query("mutation { enrollTotp { secret otpauthUrl } }", token=token, key="enrollTotp")

    def confirm(self, token, code):
        return self.query("mutation($c: String!) { confirmTotp(code: $c) { recoveryCodes } }", {"c": code},
                          token=token, key="confirmTotp")

    def verify(self, mfa_token, code=None, recovery_code=None):
        return self.query(f"mutation($t: String!, $c: String, $r: String) {{ verifyMfa(mfaToken: $t, code: $c, "
                          f"recoveryCode: $r) {{ {TOKEN_FIELDS} }} }}", {"t": mfa_token, "c": code, "r": recovery_code},
                          key="verifyMfa")

    def disable(self, token, code=None, password=None):
        return self.query("mutation($c: String, $p: String) { disableTotp(code: $c, password: $p) }",
                          {"c": code, "p": password}, token=token, key="disableTotp")


MFA_DOORS = {"rest": RestMfa, "graphql": GraphQLMfa}


@pytest.fixture(params=sorted(MFA_DOORS))
def mfa(request, client):
    return MFA_DOORS[request.param](client)


def steady() -> float:
    """Now, at least 4 seconds before the current step ends (waiting for the next one if need be)."""
    now = time.time()
    if now % STEP > STEP - 4:
        time.sleep(STEP - now % STEP + 0.1)
        now = time.time()
    return now


def field_errors(outcome) -> dict:
    """The per-field messages of a refusal, from either door."""
    if isinstance(outcome.data, dict):
        return outcome.data.get("errors", {})
    return outcome.data[0]["extensions"].get("errors", {})


def enrol(mfa, user, at: float):
    """Sign in, enrol and confirm with the code of time `at`: (access token, app, recovery codes)."""
    access = mfa.login(user.email, PASSWORD).data["access_token"]
    enrolment = mfa.enroll(access)
    assert enrolment.ok, enrolment
    app = pyotp.TOTP(enrolment.data["secret"])
    confirmed = mfa.confirm(access, app.at(at))
    assert confirmed.ok, confirmed
    return access, app, confirmed.data["recovery_codes"]


def challenge(mfa, user) -> str:
    """A password login of a user with TOTP on: no tokens, an mfa_token."""
    answer = mfa.login(user.email, PASSWORD)
    assert answer.ok and answer.data["mfa_required"] is True, answer
    assert not answer.data.get("access_token") and not answer.data.get("refresh_token")
    return answer.data["mfa_token"]


def test_enrol_confirm_then_sign_in_with_a_code_once(mfa, make_user):
    user = make_user()
    access = mfa.login(user.email, PASSWORD).data["access_token"]
    enrolment = mfa.enroll(access)
    assert enrolment.ok, enrolment
    url = urlparse(enrolment.data["otpauth_url"])
    assert (url.scheme, url.netloc) == ("otpauth", "totp")
    assert unquote(url.path) == f"/Delta:{user.email}"
    assert parse_qs(url.query)["issuer"] == ["Delta"] and parse_qs(url.query)["secret"] == [enrolment.data["secret"]]
    app = pyotp.TOTP(enrolment.data["secret"])

    pending = mfa.login(user.email, PASSWORD)  # not on until confirmed
    assert pending.ok and pending.data["access_token"] and not pending.data.get("mfa_required")

    now = steady()
    wrong = mfa.confirm(access, f"{(int(app.at(now)) + 1) % 1_000_000:06d}")
    assert wrong.status == "bad_input" and "code" in field_errors(wrong), wrong
    assert mfa.confirm(access, "12ab56").status == "bad_input"
    confirmed = mfa.confirm(access, app.at(now))
    assert confirmed.ok, confirmed
    codes = confirmed.data["recovery_codes"]
    assert len(codes) == 10 == len(set(codes))
    assert mfa.enroll(access).status == "conflict"  # on: turn it off first

    signed_in = mfa.verify(challenge(mfa, user), code=app.at(now + STEP))
    assert signed_in.ok, signed_in
    assert signed_in.data["token_type"] == "bearer" and signed_in.data["refresh_token"]
    assert mfa.me(signed_in.data["access_token"]).data["email"] == user.email
    if mfa.name == "rest":
        assert signed_in.raw.headers["Cache-Control"] == "no-store"

    replay = mfa.verify(challenge(mfa, user), code=app.at(now + STEP))  # the same code, a new sign-in
    assert replay.status == "unauthenticated", replay


def test_a_code_one_step_off_is_accepted_two_steps_off_is_not(mfa, make_user):
    user = make_user()
    access = mfa.login(user.email, PASSWORD).data["access_token"]
    app = pyotp.TOTP(mfa.enroll(access).data["secret"])
    now = steady()
    assert mfa.confirm(access, app.at(now - 2 * STEP)).status == "bad_input"  # two steps behind
    assert mfa.confirm(access, app.at(now - STEP)).ok  # one step behind

    mfa_token = challenge(mfa, user)
    assert mfa.verify(mfa_token, code=app.at(now + 2 * STEP)).status == "unauthenticated"  # two ahead
    assert mfa.verify(mfa_token, code=app.at(now + STEP)).ok  # one ahead


def test_a_code_older_than_the_last_accepted_one_is_refused(mfa, make_user):
    user = make_user()
    now = steady()
    _, app, _ = enrol(mfa, user, now + STEP)  # the app's clock runs a step ahead
    assert mfa.verify(challenge(mfa, user), code=app.at(now)).status == "unauthenticated"


def test_the_mfa_token_is_single_use_and_short_lived(mfa, make_user, app, monkeypatch):
    user = make_user()
    now = steady()
    _, totp, recovery = enrol(mfa, user, now)
    mfa_token = challenge(mfa, user)
    assert mfa.verify(mfa_token, code=totp.at(now + STEP)).ok
    assert mfa.verify(mfa_token, recovery_code=recovery[0]).status == "unauthenticated"  # spent
    assert mfa.verify("not-a-token", recovery_code=recovery[0]).status == "unauthenticated"

    monkeypatch.setitem(app.config, "MFA_TOKEN_SECONDS", 0)  # expired as soon as issued
    expired = challenge(mfa, user)
    monkeypatch.setitem(app.config, "MFA_TOKEN_SECONDS", 300)
    assert mfa.verify(expired, recovery_code=recovery[0]).status == "unauthenticated"
    assert mfa.verify(challenge(mfa, user), recovery_code=recovery[0]).ok  # refusals spent nothing


def test_each_recovery_code_signs_in_once(mfa, make_user, query_db):
    from webapp.mfa.models import RecoveryCode

    user = make_user()
    _, totp, recovery = enrol(mfa, user, steady())
    typed = recovery[1].upper().replace("-", " ")  # as someone might type it from paper
    assert mfa.verify(challenge(mfa, user), recovery_code=typed).ok
    assert mfa.verify(challenge(mfa, user), recovery_code=recovery[1]).status == "unauthenticated"
    used = query_db(lambda s: s.scalars(select(RecoveryCode.used_at).where(RecoveryCode.user_id == user.id)).all())
    assert len(used) == 10 and len([when for when in used if when is not None]) == 1

    mfa_token = challenge(mfa, user)
    both = mfa.verify(mfa_token, code=totp.now(), recovery_code=recovery[2])
    assert both.status == "bad_input" and {"code", "recovery_code"} <= set(field_errors(both))
    assert mfa.verify(mfa_token).status == "bad_input"
    assert mfa.verify(mfa_token, recovery_code="not a code").status == "bad_input"
    assert mfa.verify(mfa_token, recovery_code=recovery[2]).ok  # the bad requests spent nothing


def test_turning_it_off_needs_a_current_code_or_the_password(mfa, make_user, query_db):
    from webapp.mfa.models import MfaChallenge, RecoveryCode, TotpCredential

    user = make_user()
    now = steady()
    access, totp, _ = enrol(mfa, user, now)
    assert mfa.disable(access, code=totp.at(now)).status == "forbidden"  # already used to confirm
    assert mfa.disable(access, password="not the password").status == "forbidden"
    assert mfa.disable(access, code=totp.at(now + STEP), password=PASSWORD).status == "bad_input"
    challenge(mfa, user)
    assert mfa.disable(access, password=PASSWORD).ok

    def rows(session):
        return [session.scalars(select(model).where(model.user_id == user.id)).all()
                for model in (TotpCredential, RecoveryCode, MfaChallenge)]
    assert query_db(rows) == [[], [], []]
    assert mfa.login(user.email, PASSWORD).data["access_token"]  # the password alone signs in again
    assert mfa.disable(access, password=PASSWORD).status == "conflict"

    again, totp, _ = enrol(mfa, user, steady())  # and it can be turned on again, with a new seed
    assert mfa.disable(again, code=totp.at(time.time() + STEP)).ok


@pytest.fixture
def limited_app(tmp_path):
    """An app of its own allowing 3 wrong codes per account (its own SQLite file, in-process limits)."""
    config = Settings().override(INSTANCE_PATH=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'mfa.db'}",
                                 RATELIMIT_MFA="3/hour")
    app = create_app(config)
    with app.app_context():
        upgrade()
    return app


def test_wrong_codes_are_rate_limited_per_account(limited_app):
    from webapp.users.services import create_user

    for name, door_class in MFA_DOORS.items():
        mfa = door_class(limited_app.test_client())
        victim, bystander = (SimpleNamespace(email=f"{who}-{name}@example.com") for who in ("victim", "other"))
        with limited_app.app_context():
            for person in (victim, bystander):
                create_user(db.session, name=name, email=person.email, password=PASSWORD)
            db.session.remove()
        now = steady()
        _, totp, _ = enrol(mfa, victim, now)
        _, other_totp, _ = enrol(mfa, bystander, now)
        mfa_token = challenge(mfa, victim)
        wrong = f"{(int(totp.at(now)) + 500_000) % 1_000_000:06d}"
        assert [mfa.verify(mfa_token, code=wrong).status for _ in range(3)] == ["unauthenticated"] * 3
        refused = mfa.verify(mfa_token, code=totp.at(now + STEP))  # even the right code waits now
        assert refused.status == "rate_limited", refused
        if name == "rest":
            assert int(refused.raw.headers["Retry-After"]) >= 1
            assert refused.data["code"] == 429 and refused.data["status"] == "Too Many Requests"
        else:
            assert refused.data[0]["extensions"]["retryAfter"] >= 1
        assert mfa.verify(challenge(mfa, bystander), code=other_totp.at(now + STEP)).ok  # per account


def test_nothing_secret_is_stored_or_logged(mfa, make_user, query_db, caplog):
    from webapp.mfa.models import MfaChallenge, RecoveryCode, TotpCredential

    caplog.set_level("DEBUG")
    user = make_user()
    now = steady()
    access = mfa.login(user.email, PASSWORD).data["access_token"]
    seed = mfa.enroll(access).data["secret"]
    recovery = mfa.confirm(access, pyotp.TOTP(seed).at(now)).data["recovery_codes"]
    mfa_token = challenge(mfa, user)
    assert mfa.verify(mfa_token, recovery_code=recovery[0]).ok

    def stored(session):
        return " ".join(str(value) for model in (TotpCredential, RecoveryCode, MfaChallenge)
                        for row in session.scalars(select(model)).all() for value in vars(row).values())
    secrets = [seed, mfa_token, *recovery, *(code.replace("-", "") for code in recovery)]
    text = query_db(stored)
    assert seed[:8] not in text and not [secret for secret in secrets if secret in text]
    assert not [secret for secret in secrets if secret in caplog.text]


def test_a_personal_access_token_cannot_manage_two_factor_sign_in(mfa, client, make_user):
    user = make_user()
    access = mfa.login(user.email, PASSWORD).data["access_token"]
    made = client.post("/api/v1/users/me/tokens", json={"name": "script", "scopes": ["read", "write"]},
                       headers={"Authorization": f"Bearer {access}"})
    assert made.status_code == 201, made.get_json()
    pat = made.get_json()["token"]
    assert mfa.enroll(pat).status == "forbidden"
    assert mfa.enroll(access).ok
    assert mfa.confirm(pat, "123456").status == "forbidden"
    assert mfa.disable(pat, password=PASSWORD).status == "forbidden"


@pytest.mark.services
def test_two_hosts_share_the_replay_store_and_the_attempt_limit(redis_url, make_user, gunicorns):  # noqa: F811
    db_url, redis_url = services_urls()
    shared = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "RATELIMIT_MFA": "3/hour",
              "CELERY_QUEUE_PREFIX": f"mfa-{uuid.uuid4().hex[:8]}-"}
    host_a, host_b = gunicorns("a", **shared), gunicorns("b", **shared)
    user = make_user()

    def post(host, path, token=None, **body):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(f"{host.base}/api/v1{path}", json=body, headers=headers, timeout=10)

    def mfa_token(host):
        answer = post(host, "/auth/login", email=user.email, password=PASSWORD).json()
        assert answer["mfa_required"] is True and "access_token" not in answer, answer
        return answer["mfa_token"]

    access = post(host_a, "/auth/login", email=user.email, password=PASSWORD).json()["access_token"]
    totp = pyotp.TOTP(post(host_a, "/auth/mfa/totp", access).json()["secret"])
    now = steady()
    assert post(host_b, "/auth/mfa/totp/confirm", access, code=totp.at(now)).status_code == 200

    from_a = mfa_token(host_a)
    assert post(host_a, "/auth/mfa/verify", mfa_token=from_a, code=totp.at(now + STEP)).status_code == 200
    replay = post(host_b, "/auth/mfa/verify", mfa_token=mfa_token(host_b), code=totp.at(now + STEP))
    assert replay.status_code == 401, replay.text  # used on host A
    assert post(host_b, "/auth/mfa/verify", mfa_token=from_a, code=totp.at(now + STEP)).status_code == 401

    wrong = f"{(int(totp.at(now)) + 500_000) % 1_000_000:06d}"
    pending = mfa_token(host_a)
    assert [post(host, "/auth/mfa/verify", mfa_token=pending, code=wrong).status_code
            for host in (host_a, host_b)] == [401, 401]  # with the replay above: three wrong guesses
    limited = post(host_a, "/auth/mfa/verify", mfa_token=pending, code=totp.at(now + STEP))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
