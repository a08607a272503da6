"""The task outbox: what a write asks for commits with it, and goes out once, broker or not.

SQLite (eager tasks, the embedded default) and PostgreSQL; the last test needs a real Celery worker
on Redis (services mode). A broker that stays down through a real outage, with gunicorn and a worker
running beat, is drill E in test_fault_drills_outbox.py.
"""
from __future__ import annotations

from datetime import timedelta
from io import BytesIO

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.servers import redis_broker, start_worker, wait_for  # noqa: F401  (fixtures)
from tests.test_profiles import image_bytes
from webapp.outbox.models import OutboxTask

SEND_TOKEN = "delta.email.send_token_email"


def rows(query_db, after=0) -> list[OutboxTask]:
    """The outbox rows, or those recorded after row `after` (make_user's sign-ups record one each)."""
    return query_db(lambda s: s.scalars(select(OutboxTask).where(OutboxTask.id > after).order_by(OutboxTask.id)).all())


def last_row(query_db) -> int:
    return max([r.id for r in rows(query_db)], default=0)


def relay_later(app, query_db) -> None:
    """A while later, beat's relay runs (rows younger than a few seconds are left to their commit)."""
    from webapp.db import utcnow

    query_db(lambda s: (s.execute(OutboxTask.__table__.update().values(
        created_at=utcnow() - timedelta(minutes=1))), s.commit()))
    with app.app_context():
        app.extensions["celery"].tasks["delta.outbox.relay"].apply()


def auth(access):
    return {"Authorization": f"Bearer {access}"}


def test_a_sign_up_records_its_email_and_hands_it_over_after_commit(door, outbox, query_db):
    from webapp.accounts.models import AccountToken

    signed_up = door.signup("Ada", "ada@example.com", PASSWORD)
    assert signed_up.ok
    [row] = rows(query_db)
    token_id = query_db(lambda s: s.scalar(select(AccountToken.id)))
    assert (row.task, row.args, row.attempts) == (SEND_TOKEN, [token_id], 1)
    assert row.sent_at is not None and row.error is None
    assert row.request_id == signed_up.raw.headers["X-Request-ID"]  # one id from the request to its email
    assert [m["Subject"] for m in outbox("ada@example.com")] == ["Verify your email address"]


def test_a_rolled_back_write_asks_for_nothing_and_a_savepoint_waits_for_the_real_commit(app, make_user, outbox,
                                                                                         query_db):
    from webapp.accounts import services as accounts
    from webapp.accounts.models import VERIFY_EMAIL, AccountToken
    from webapp.extensions import db
    from webapp.users.models import User

    user = make_user(verified=False)
    start, outbox_before = last_row(query_db), len(outbox(user.email))
    tokens = query_db(lambda s: len(s.scalars(select(AccountToken)).all()))
    with app.app_context():
        accounts.send_token(accounts.issue_token(db.session, db.session.get(User, user.id), VERIFY_EMAIL))
        db.session.rollback()
        db.session.remove()
    assert rows(query_db, start) == [] and len(outbox(user.email)) == outbox_before
    assert query_db(lambda s: len(s.scalars(select(AccountToken)).all())) == tokens

    with app.app_context():
        with db.session.begin_nested():
            accounts.send_token(accounts.issue_token(db.session, db.session.get(User, user.id), VERIFY_EMAIL))
        assert len(outbox(user.email)) == outbox_before  # the savepoint is released, nothing committed yet
        db.session.commit()
        db.session.remove()
    [row] = rows(query_db, start)
    assert row.sent_at is not None and len(outbox(user.email)) == outbox_before + 1


def test_writes_succeed_while_the_broker_is_down_and_their_tasks_go_out_once_it_is_back(
        app, client, door, broker_down, make_user, token, outbox, query_db):
    from webapp.mail.models import SentEmail

    admin = make_user(role="admin")
    access, start = token(admin), last_row(query_db)
    assert door.signup("Bo", "bo@example.com", PASSWORD).ok
    bo = door.login("bo@example.com", PASSWORD).data["access_token"]
    assert door.resend_verification(bo).ok
    job = door.request_user_export(access)
    assert job.ok and job.data["status"] == "queued"  # not failed, not 503: it waits for the broker
    avatar = client.put(f"/api/v1/users/{admin.id}/avatar", headers=auth(access), content_type="multipart/form-data",
                        data={"file": (BytesIO(image_bytes()), "a.png")})
    assert avatar.status_code == 200 and avatar.get_json()["avatar_thumbnails"] == []

    waiting = rows(query_db, start)
    assert sorted(r.task for r in waiting) == sorted(
        [SEND_TOKEN, SEND_TOKEN, "delta.jobs.run_job", "delta.jobs.make_thumbnails"])
    assert all(r.sent_at is None for r in waiting) and outbox("bo@example.com") == outbox(admin.email) == []
    assert door.get_job(access, job.data["id"]).data["status"] == "queued"

    broker_down()  # the broker is back
    relay_later(app, query_db)
    assert [m["Subject"] for m in outbox("bo@example.com")] == ["Verify your email address"] * 2
    assert door.get_job(access, job.data["id"]).data["status"] == "succeeded"
    job_emails = lambda: [m for m in outbox(admin.email) if "job" in m["Subject"]]  # noqa: E731
    assert [m["Subject"] for m in job_emails()] == ["Your user-export job succeeded"]
    profile = client.get(f"/api/v1/users/{admin.id}/profile", headers=auth(access)).get_json()
    assert sorted(t["size"] for t in profile["avatar_thumbnails"]) == [64, 256]
    assert all(r.sent_at is not None for r in rows(query_db))

    relay_later(app, query_db)  # beat's next run: nothing is handed over twice
    assert len(outbox("bo@example.com")) == 2 and len(job_emails()) == 1
    ledger = query_db(lambda s: s.scalars(select(SentEmail).where(SentEmail.recipient == "bo@example.com")).all())
    assert len(ledger) == 2


def test_a_password_reset_asked_for_while_the_broker_is_down_is_sent_once_it_is_back(
        app, client, broker_down, make_user, outbox, query_db):
    user = make_user()
    start = last_row(query_db)
    assert client.post("/api/v1/auth/password-reset", json={"email": user.email}).status_code == 202
    [row] = rows(query_db, start)
    assert row.task == "delta.email.password_reset" and row.sent_at is None
    broker_down()
    relay_later(app, query_db)
    assert [m["Subject"] for m in outbox(user.email)][-1:] == ["Reset your password"]


def test_metrics_show_how_many_tasks_wait(app, client, broker_down, query_db):
    assert client.post("/api/v1/users", json={"name": "Cy", "email": "cy@example.com",
                                              "password": PASSWORD}).status_code == 201
    relay_later(app, query_db)  # beat's relay, the broker still down: it counts what waits
    assert "delta_outbox_pending 1.0" in client.get("/metrics").get_data(as_text=True)
    broker_down()
    relay_later(app, query_db)
    assert "delta_outbox_pending 0.0" in client.get("/metrics").get_data(as_text=True)


def test_handed_over_rows_are_purged_after_a_while_waiting_ones_never(app, query_db):
    from webapp.db import utcnow

    now, old = utcnow(), utcnow() - timedelta(hours=app.config["OUTBOX_KEEP_HOURS"] + 1)

    def add(session):
        session.add_all([OutboxTask(task=SEND_TOKEN, args=[1], created_at=old, sent_at=old),
                         OutboxTask(task=SEND_TOKEN, args=[2], created_at=now, sent_at=now),
                         OutboxTask(task=SEND_TOKEN, args=[3], created_at=old, sent_at=None)])
        session.commit()

    query_db(add)
    with app.app_context():
        assert app.extensions["celery"].tasks["delta.outbox.purge"].apply().get() == 1
    assert [r.args for r in rows(query_db)] == [[2], [3]]


def test_an_unknown_task_name_is_refused_when_asked_for(app):
    from webapp.dispatch import enqueue

    with app.app_context(), pytest.raises(LookupError):
        enqueue("delta.email.no_such_task", 1)


@pytest.mark.services
def test_a_worker_receives_what_the_outbox_hands_over(app, client, start_worker, make_user, token, outbox, query_db):
    admin = make_user(role="admin")
    access = token(admin)
    start_worker()
    assert client.post("/api/v1/users", json={"name": "Di", "email": "di@example.com",
                                              "password": PASSWORD}).status_code == 201
    job = client.post("/api/v1/jobs/user-export", json={}, headers=auth(access)).get_json()
    client.put(f"/api/v1/users/{admin.id}/avatar", headers=auth(access), content_type="multipart/form-data",
               data={"file": (BytesIO(image_bytes()), "a.png")})
    wait_for(lambda: outbox("di@example.com"), what="verification email")
    wait_for(lambda: client.get(f"/api/v1/jobs/{job['id']}", headers=auth(access)).get_json()["status"] == "succeeded",
             what="export")
    profile = lambda: client.get(f"/api/v1/users/{admin.id}/profile", headers=auth(access)).get_json()  # noqa: E731
    wait_for(lambda: profile()["avatar_thumbnails"], what="thumbnails")
    wait_for(lambda: outbox(admin.email), what="job email")
    assert all(r.sent_at is not None and r.attempts == 1 for r in rows(query_db))
    assert len(outbox("di@example.com")) == 1
