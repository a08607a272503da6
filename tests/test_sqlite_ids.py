"""Ids are never handed out twice (issue 9), through both doors.

On SQLite without AUTOINCREMENT, deleting the newest user gave its id to the next sign-up, whose
verification email the ledger then skipped as already sent. PostgreSQL sequences never go back,
so these run there too as the same contract.
"""
from __future__ import annotations

from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.test_accounts import token_in

ROUNDS = 3


def test_each_sign_up_after_deleting_the_newest_user_gets_a_new_id_and_its_own_email(door, outbox, query_db):
    from webapp.mail.models import SentEmail

    email, ids = "again@example.com", []
    for round_ in range(1, ROUNDS + 1):
        signed_up = door.signup(f"Again {round_}", email, PASSWORD)
        assert signed_up.ok, signed_up
        messages = outbox(email)
        assert len(messages) == round_, f"sign-up {round_} got no verification email of its own"
        assert len({token_in(message) for message in messages}) == round_
        ledger = query_db(lambda s: s.scalars(select(SentEmail.status).where(SentEmail.recipient == email)).all())
        assert ledger == ["sent"] * round_

        new_id = signed_up.data["id"]
        assert all(new_id > earlier for earlier in ids), (new_id, ids)
        ids.append(new_id)

        access = door.login(email, PASSWORD).data["access_token"]
        assert door.delete_user(access, new_id).ok  # the newest user: the id SQLite would hand out next

    assert door.signup("Last", email, PASSWORD).data["id"] > max(ids)


def test_the_latest_verification_email_verifies_the_new_account(door, outbox):
    first = door.signup("Once", "once@example.com", PASSWORD).data
    access = door.login("once@example.com", PASSWORD).data["access_token"]
    assert door.delete_user(access, first["id"]).ok
    second = door.signup("Twice", "once@example.com", PASSWORD).data

    messages = outbox("once@example.com")
    assert len(messages) == 2 and second["id"] != first["id"]
    old, new = (token_in(message) for message in messages)
    assert door.verify_email(old).status == "bad_input"  # its account is gone
    assert door.verify_email(new).ok
    access = door.login("once@example.com", PASSWORD).data["access_token"]
    assert door.me(access).data["email_verified"] is not None


def test_a_cached_read_of_a_deleted_user_is_not_found(door, make_user, token):
    admin = make_user(role="admin")
    admin_token = token(admin)
    for round_ in range(ROUNDS):
        user = make_user(name=f"Gone {round_}")  # the newest user, so the id SQLite would reuse
        for _ in range(2):  # the second read is served from the cache
            read = door.get_user(admin_token, user.id)
            assert read.ok and read.data["name"] == f"Gone {round_}"
        assert door.delete_user(admin_token, user.id).ok
        assert door.get_user(admin_token, user.id).status == "not_found"

        newcomer = door.signup(f"New {round_}", f"new{round_}@example.com", PASSWORD).data
        assert newcomer["id"] > user.id
        assert door.get_user(admin_token, user.id).status == "not_found"
        assert door.get_user(admin_token, newcomer["id"]).data["name"] == f"New {round_}"


def test_the_email_ledger_does_not_trust_ids(app, client, make_user, token, outbox, query_db):
    """Should an id ever come back (a database restored from a backup, an id freed before migration
    0004), the new row's email is still sent: ledger keys are unique forever, not per id."""
    import hashlib
    import secrets

    from sqlalchemy import update

    from webapp.accounts.models import AccountToken
    from webapp.accounts.services import token_text
    from webapp.db import utcnow
    from webapp.jobs.models import Job

    tasks = app.extensions["celery"].tasks
    client.post("/api/v1/users", json={"name": "Re", "email": "re@example.com", "password": PASSWORD})

    def same_id_new_token(session):
        row = session.scalar(select(AccountToken))
        row.nonce = secrets.token_hex(16)
        row.token_hash = hashlib.sha256(token_text(row).encode()).hexdigest()
        session.commit()
        return row.id

    token_id = query_db(same_id_new_token)
    with app.app_context():
        assert tasks["delta.email.send_token_email"].apply(args=(token_id,)).get() == "sent"
        assert tasks["delta.email.send_token_email"].apply(args=(token_id,)).get() == "skipped"  # redelivered
    assert len({token_in(message) for message in outbox("re@example.com")}) == 2

    admin = make_user(role="admin")
    job_id = client.post("/api/v1/jobs/user-export", json={"format": "csv"},
                         headers={"Authorization": f"Bearer {token(admin)}"}).get_json()["id"]
    query_db(lambda s: (s.execute(update(Job).where(Job.id == job_id).values(created_at=utcnow())), s.commit()))
    with app.app_context():
        assert tasks["delta.email.job_finished"].apply(args=(job_id,)).get() == "sent"
        assert tasks["delta.email.job_finished"].apply(args=(job_id,)).get() == "skipped"  # redelivered
    assert len([m for m in outbox(admin.email) if "job" in m["Subject"]]) == 2
