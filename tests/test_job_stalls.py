"""Stalled jobs: a running job beats a heartbeat; one silent for JOB_STALL_SECONDS runs again, to the end.

SQLite and PostgreSQL with eager tasks: the detector is run as beat runs it, and the run it asks
for goes through the outbox. The whole worker SIGKILLed mid-export, with a real worker and beat, is
drill F in test_fault_drills_outbox.py.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from webapp.db import utcnow
from webapp.jobs.models import Job
from webapp.outbox.models import OutboxTask

DETECTOR = "delta.housekeeping.requeue_stalled_jobs"


def auth(access):
    return {"Authorization": f"Bearer {access}"}


def running_job(query_db, owner_id, *, silent_for: timedelta, attempts=1, heartbeat=True) -> int:
    """A job left `running` by a worker that died `silent_for` ago."""
    def add(session):
        then = utcnow() - silent_for
        job = Job(kind="user-export", owner_id=owner_id, status="running", progress=40, attempts=attempts,
                  params={"format": "csv"}, started_at=then, heartbeat_at=then if heartbeat else None)
        session.add(job)
        session.commit()
        return job.id

    return query_db(add)


def run_detector(app):
    with app.app_context():
        return app.extensions["celery"].tasks[DETECTOR].apply().get()


def test_a_silent_running_job_is_queued_again_and_finished_once(app, door, make_user, token, outbox, query_db):
    admin = make_user(role="admin")
    job_id = running_job(query_db, admin.id, silent_for=timedelta(seconds=app.config["JOB_STALL_SECONDS"] + 5))

    assert run_detector(app) == {"requeued": 1, "failed": 0}
    job = door.get_job(token(admin), job_id).data
    assert job["status"] == "succeeded" and job["progress"] == 100 and job["error"] is None
    assert query_db(lambda s: s.get(Job, job_id).attempts) == 2
    runs = query_db(lambda s: s.scalars(select(OutboxTask.args).where(OutboxTask.task == "delta.jobs.run_job")).all())
    assert runs == [[job_id]]  # asked for through the outbox
    assert [m["Subject"] for m in outbox(admin.email) if "job" in m["Subject"]] == ["Your user-export job succeeded"]
    assert run_detector(app) == {"requeued": 0, "failed": 0}  # nothing left to find


def test_a_job_that_beats_is_left_alone(app, door, make_user, token, query_db):
    admin = make_user(role="admin")
    job_id = running_job(query_db, admin.id, silent_for=timedelta(seconds=app.config["JOB_STALL_SECONDS"] - 30))
    assert run_detector(app) == {"requeued": 0, "failed": 0}
    assert door.get_job(token(admin), job_id).data["status"] == "running"


def test_a_job_from_before_heartbeats_counts_from_its_start(app, door, make_user, token, query_db):
    admin = make_user(role="admin")
    job_id = running_job(query_db, admin.id, silent_for=timedelta(hours=2), heartbeat=False)
    assert run_detector(app)["requeued"] == 1
    assert door.get_job(token(admin), job_id).data["status"] == "succeeded"


def test_a_job_that_stalls_too_often_fails_with_a_clear_error(app, door, make_user, token, query_db):
    admin = make_user(role="admin")
    job_id = running_job(query_db, admin.id, silent_for=timedelta(hours=1), attempts=app.config["JOB_MAX_ATTEMPTS"])
    assert run_detector(app) == {"requeued": 0, "failed": 1}
    job = door.get_job(token(admin), job_id).data
    assert job["status"] == "failed" and job["finished_at"] is not None
    assert "stopped answering 3 times" in job["error"] and job["result_url"] is None


def test_a_batch_slower_than_the_stall_limit_still_beats(app, client, make_user, token, monkeypatch, query_db):
    """The heartbeat has a thread of its own: a long batch is not mistaken for a dead worker."""
    from webapp.jobs import users_io

    admin = make_user(role="admin")
    make_user()
    monkeypatch.setitem(app.config, "JOB_STALL_SECONDS", 1.2)  # a beat every 0.5 s
    monkeypatch.setitem(app.config, "JOB_BATCH_SIZE", 1)
    verdicts = []

    def slow_batch():  # 1.8 s with no progress report; then the detector looks from elsewhere, as beat would
        import threading
        import time

        time.sleep(1.8)
        detector = threading.Thread(target=lambda: verdicts.append(run_detector(app)))
        detector.start()
        detector.join()

    monkeypatch.setattr(users_io, "_pause", slow_batch)
    job = client.post("/api/v1/jobs/user-export", json={}, headers=auth(token(admin))).get_json()
    assert job["status"] == "succeeded"
    assert verdicts and all(v == {"requeued": 0, "failed": 0} for v in verdicts)
    assert query_db(lambda s: s.get(Job, job["id"]).attempts) == 1


def test_a_run_that_was_superseded_stops_and_leaves_the_job_to_the_newer_run(app, client, make_user, token,
                                                                             monkeypatch, query_db):
    from webapp.jobs import users_io

    admin = make_user(role="admin")
    for _ in range(3):
        make_user()
    monkeypatch.setitem(app.config, "JOB_BATCH_SIZE", 1)

    def claimed_again():  # another worker claims the job between two batches (as after a false alarm)
        monkeypatch.setattr(users_io, "_pause", lambda: None)
        query_db(lambda s: (s.execute(update(Job).values(attempts=Job.attempts + 1)), s.commit()))

    monkeypatch.setattr(users_io, "_pause", claimed_again)
    job = client.post("/api/v1/jobs/user-export", json={}, headers=auth(token(admin))).get_json()
    stored = query_db(lambda s: s.get(Job, job["id"]))
    assert (stored.status, stored.attempts, stored.result_path) == ("running", 2, None)
    assert stored.progress < 100
