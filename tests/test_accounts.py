"""Email verification and password reset, end to end through the outbox, through both doors."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from tests.conftest import PASSWORD

TOKEN = re.compile(r"token=([0-9]+\.[A-Za-z0-9_-]+)")


def token_in(message) -> str:
    text = message.get_body(("plain",)).get_content()
    return TOKEN.search(text).group(1)


def test_signup_sends_a_verification_email_whose_token_verifies(door, outbox, make_user):
    signed_up = door.signup("Ada", "Ada@Example.com", PASSWORD)
    assert signed_up.ok and signed_up.data["email_verified"] is None
    [message] = outbox("ada@example.com")
    assert message["Subject"] == "Verify your email address"
    assert message.get_body(("html",)) is not None
    token = token_in(message)

    assert door.verify_email(token).ok
    access = door.login("ada@example.com", PASSWORD).data["access_token"]
    assert door.me(access).data["email_verified"] is not None
    # single use
    assert door.verify_email(token).status == "bad_input"


def test_verify_email_refuses_bad_tokens_with_400(client, door, outbox, query_db):
    door.signup("Ada", "ada@example.com", PASSWORD)
    token = token_in(outbox()[0])
    token_id, mac = token.split(".")
    for bad in ("", "nonsense", f"{token_id}.{mac[:-2]}xx", f"99999.{mac}", "1" * 30 + ".x", f"\u00b3.{mac}"):  # "³" is a digit to str.isdigit()
        assert door.verify_email(bad).status == "bad_input", bad

    from webapp.accounts.models import AccountToken
    from webapp.db import utcnow

    def expire(session):
        session.get(AccountToken, int(token_id)).expires_at = utcnow() - timedelta(seconds=1)
        session.commit()

    query_db(expire)
    outcome = door.verify_email(token)
    assert outcome.status == "bad_input"
    if door.name == "rest":
        assert outcome.raw.status_code == 400
        assert outcome.data == {"code": 400, "status": "Bad Request",
                                "message": "The token is invalid or has expired."}


def test_email_change_needs_verifying_again(door, outbox, make_user, token):
    user = make_user()
    access = token(user)
    old_token = token_in(outbox(user.email)[0])
    changed = door.update_user(access, user.id, email="new@example.com")
    assert changed.ok and changed.data["email_verified"] is None
    assert door.verify_email(old_token).status == "bad_input"  # issued for the old address
    assert door.verify_email(token_in(outbox("new@example.com")[0])).ok
    assert door.me(access).data["email_verified"] is not None


def test_resend_sends_a_new_email_and_is_rate_limited(door, outbox, make_user, token):
    user = make_user(verified=False)
    access = token(user)
    resent = door.resend_verification(access)
    assert resent.ok
    if door.name == "rest":
        assert resent.raw.status_code == 202
    messages = outbox(user.email)
    assert len(messages) == 2
    assert door.verify_email(token_in(messages[-1])).ok
    for _ in range(5):
        door.resend_verification(access)  # verified now: nothing more is sent
    assert len(outbox(user.email)) == 2


def test_resend_limit(client, make_user, token, outbox):
    user = make_user(verified=False)
    access = token(user)
    codes = [client.post("/api/v1/auth/verify-email/resend", headers={"Authorization": f"Bearer {access}"}).status_code
             for _ in range(5)]
    assert codes == [202, 202, 202, 202, 429]  # sign-up's email counts too
    assert client.post("/api/v1/auth/verify-email/resend").status_code == 401


def test_broker_down_at_signup_then_verifiable_once_back(app, client, broker_down, outbox, query_db):
    """The emails wait in the task outbox while the broker is down and go out once it is back."""
    from webapp.db import utcnow
    from webapp.outbox.models import OutboxTask

    response = client.post("/api/v1/users", json={"name": "Bo", "email": "bo@example.com", "password": PASSWORD})
    assert response.status_code == 201
    assert outbox() == []
    access = client.post("/api/v1/auth/login", json={"email": "bo@example.com", "password": PASSWORD}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    assert client.post("/api/v1/auth/verify-email/resend", headers=headers).status_code == 202
    # password reset never tells: 202 even with the broker down
    assert client.post("/api/v1/auth/password-reset", json={"email": "bo@example.com"}).status_code == 202
    assert outbox() == []
    assert query_db(lambda s: s.scalar(select(func.count()).select_from(OutboxTask)
                                       .where(OutboxTask.sent_at.is_(None)))) == 3

    broker_down()  # Redis is back; a while later beat's relay runs
    query_db(lambda s: (s.execute(OutboxTask.__table__.update().values(
        created_at=utcnow() - timedelta(minutes=1))), s.commit()))
    with app.app_context():
        app.extensions["celery"].tasks["delta.outbox.relay"].apply()
    subjects = sorted(m["Subject"] for m in outbox("bo@example.com"))
    assert subjects == ["Reset your password", "Verify your email address", "Verify your email address"]
    verification = [m for m in outbox("bo@example.com") if m["Subject"].startswith("Verify")][-1]
    assert client.post("/api/v1/auth/verify-email", json={"token": token_in(verification)}).status_code == 204
    assert client.get("/api/v1/users/me", headers=headers).get_json()["email_verified"] is not None


def test_password_reset_flow_signs_out_every_session(door, outbox, make_user, login):
    user = make_user()
    phone, laptop = login(user), login(user)
    assert door.request_password_reset(user.email.upper()).ok
    [message] = outbox(user.email)[-1:]
    assert message["Subject"] == "Reset your password"
    reset = token_in(message)

    assert door.reset_password(reset, "short").status == "bad_input"  # 422, token not spent
    assert door.reset_password(reset, "a brand new password").ok
    assert door.reset_password(reset, "another new password").status == "bad_input"  # spent

    assert door.me(phone["access_token"]).status == "unauthenticated"
    assert door.me(laptop["access_token"]).status == "unauthenticated"
    assert door.refresh(laptop["refresh_token"]).status == "unauthenticated"
    assert door.login(user.email, PASSWORD).status == "unauthenticated"
    assert door.login(user.email, "a brand new password").ok


def test_password_reset_answers_the_same_for_unknown_email(client, outbox, make_user):
    user = make_user()
    known = client.post("/api/v1/auth/password-reset", json={"email": user.email})
    before = len(outbox())
    unknown = client.post("/api/v1/auth/password-reset", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.data == unknown.data
    assert len(outbox()) == before  # nothing sent to a stranger
    assert client.post("/api/v1/auth/password-reset", json={"email": "not an email"}).status_code == 422


def test_reset_token_expires_after_an_hour(client, outbox, make_user, query_db):
    from webapp.accounts.models import RESET_PASSWORD, AccountToken

    user = make_user()
    client.post("/api/v1/auth/password-reset", json={"email": user.email})
    reset = token_in(outbox(user.email)[-1])
    row = query_db(lambda s: s.scalar(select(AccountToken).where(AccountToken.purpose == RESET_PASSWORD)))
    assert timedelta(minutes=59) < row.expires_at - row.created_at <= timedelta(hours=1)
    assert reset not in (row.token_hash, row.nonce)  # only a hash is stored
    query_db(lambda s: (s.get(AccountToken, row.id).__setattr__("expires_at", row.created_at), s.commit()))
    response = client.post("/api/v1/auth/password-reset/confirm", json={"token": reset, "new_password": "long enough pw"})
    assert response.status_code == 400


def test_each_email_is_sent_once_even_if_its_task_runs_again(app, client, outbox, query_db):
    from webapp.accounts.models import AccountToken
    from webapp.mail.models import SentEmail

    client.post("/api/v1/users", json={"name": "Cy", "email": "cy@example.com", "password": PASSWORD})
    row = query_db(lambda s: s.scalar(select(SentEmail)))
    assert row.status == "sent"
    token_id = query_db(lambda s: s.scalar(select(AccountToken.id)))
    task = app.extensions["celery"].tasks["delta.email.send_token_email"]
    with app.app_context():
        assert task.apply(args=(token_id,)).get() == "skipped"
    assert len(outbox()) == 1
    assert query_db(lambda s: s.scalar(select(func.count()).select_from(SentEmail))) == 1
