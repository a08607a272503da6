"""Running one job in a worker: claim it, do the work in batches, record the outcome once.

Safe to run twice (a redelivery after a worker was killed, or a job the stall detector queued
again): a finished or cancelled job is left alone, the result is written to a temporary file and
renamed into place, and the outcome is recorded by a conditional update that only the latest
claim of a running job can pass (`attempts` numbers the claims: a run that was superseded stops at
its next batch). While it runs, the job beats its heartbeat (webapp/jobs/stalls.py); the email
saying it finished is recorded in the same transaction as the outcome (the outbox).
"""
from __future__ import annotations

import json
import logging
import os
from datetime import timezone
from pathlib import Path

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp.accounts.emails import render_job_done
from webapp.auth.models import AuthSession
from webapp.db import utcnow
from webapp.dispatch import enqueue
from webapp.jobs import users_io
from webapp.jobs.models import Job
from webapp.jobs.services import announce
from webapp.jobs.stalls import Heartbeat
from webapp.settings_paths import job_results_dir
from webapp.users.models import User
from webapp.users.services import user_view

log = logging.getLogger("webapp.jobs")
NOTIFY_TASK = "delta.email.job_finished"


def _mine(job_id: int, attempt: int):
    """The job as this run claimed it: still running, and not claimed again since."""
    return (Job.id == job_id, Job.status == "running", Job.attempts == attempt)


def _progress(session: Session, job_id: int, attempt: int):
    """Record progress (and a heartbeat); answer False once the job was cancelled or claimed again."""
    def report(done: int, total: int) -> bool:
        percent = min(99, int(done * 100 / total)) if total else 99
        updated = session.execute(update(Job).where(*_mine(job_id, attempt))
                                  .values(progress=percent, heartbeat_at=utcnow())).rowcount
        if updated:
            announce(session, session.get(Job, job_id))
        session.commit()
        return updated == 1
    return report


def run_job(session: Session, job_id: int) -> str:
    """Run the job; returns its final status (or its current one when there is nothing to do)."""
    now = utcnow()
    attempt = session.execute(update(Job).where(Job.id == job_id, Job.status.in_(("queued", "running")))
                              .values(status="running", started_at=now, heartbeat_at=now, progress=0,
                                      attempts=Job.attempts + 1).returning(Job.attempts)).scalar()
    if attempt is not None:
        announce(session, session.get(Job, job_id))
    session.commit()
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or attempt is None:
        return job.status if job else "missing"
    limit = current_app.config["JOB_MAX_ATTEMPTS"]
    if attempt > limit:  # redelivered again and again: a job that kills its worker each time
        _finish(session, job_id, attempt, status="failed", error=f"Gave up after {limit} attempts.")
        return "failed"
    folder = job_results_dir(current_app.config)
    folder.mkdir(parents=True, exist_ok=True)
    name, content_type, work = _plan(job)
    final = folder / f"{job.id}-{name}"
    partial = folder / f".{job.id}-{name}.{attempt}.part"
    for stale in folder.glob(f".{job.id}-*.part"):  # left by a run that died
        stale.unlink(missing_ok=True)
    try:
        with Heartbeat(job_id, attempt), open(partial, "w", encoding="utf-8", newline="") as out:
            work(session, job, out, _progress(session, job.id, attempt))
        os.replace(partial, final)
    except users_io.Stopped:
        partial.unlink(missing_ok=True)
        return _status(session, job_id)
    except Exception as exc:
        session.rollback()
        partial.unlink(missing_ok=True)
        if isinstance(exc, users_io.WrongHeader):  # the client's file, not our fault: no traceback
            log.warning("job %s (%s) refused its input: %s", job_id, job.kind, exc)
        else:
            log.exception("job %s (%s) failed", job_id, job.kind)
        _finish(session, job_id, attempt, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        return _status(session, job_id)
    if not _finish(session, job_id, attempt, notify=True, status="succeeded", progress=100,
                   result_path=str(final), result_name=name, result_type=content_type):
        status = _status(session, job_id)
        if status == "cancelled":  # at the last moment; a newer run of the job keeps the file
            final.unlink(missing_ok=True)
        return status
    return "succeeded"


def _finish(session: Session, job_id: int, attempt: int, *, notify: bool = False, **values) -> bool:
    """Record the outcome if this run still owns the job; with `notify`, its email in the same commit."""
    done = session.execute(update(Job).where(*_mine(job_id, attempt))
                           .values(finished_at=utcnow(), **values)).rowcount
    if done and notify:
        enqueue(NOTIFY_TASK, job_id)
    if done:
        announce(session, session.get(Job, job_id))
    session.commit()
    return done == 1


def _status(session: Session, job_id: int) -> str:
    session.rollback()
    return session.scalar(select(Job.status).where(Job.id == job_id)) or "missing"


def _plan(job: Job):
    if job.kind == "user-export":
        fmt = (job.params or {}).get("format", "csv")
        return f"users.{fmt}", "text/csv" if fmt == "csv" else "application/json", _export
    if job.kind == "user-import":
        return "import-report.json", "application/json", _import
    if job.kind == "account-export":
        return "my-data.json", "application/json", _account_export
    raise ValueError(f"unknown job kind {job.kind!r}")


def _export(session, job, out, progress):
    users_io.export_users(session, out, job.params.get("format", "csv"), progress=progress)


def _import(session, job, out, progress):
    source = Path(job.params["source"])
    with open(source, encoding="utf-8-sig", newline="") as handle:
        total = users_io.count_rows(handle)
    with open(source, encoding="utf-8-sig", newline="") as handle:
        users_io.import_users(session, handle, out, total=total, progress=progress)


def _account_export(session, job, out, progress):
    """Everything stored about the owner, never the password hash."""
    user = session.get(User, job.owner_id)
    sessions = session.scalars(select(AuthSession).where(AuthSession.user_id == user.id)
                               .order_by(AuthSession.created_at)).all()
    jobs = session.scalars(select(Job).where(Job.owner_id == user.id).order_by(Job.id)).all()
    view = user_view(user, user)
    archive = {
        "exported_at": utcnow().isoformat(),
        "user": {key: value for key, value in view.items() if key != "profile"},
        "profile": view["profile"],
        "sessions": [{"id": s.id, "created_at": s.created_at, "last_used_at": s.last_used_at,
                      "expires_at": s.expires_at, "revoked_at": s.revoked_at,
                      "user_agent": s.user_agent, "ip": s.ip} for s in sessions],
        "jobs": [{"id": j.id, "kind": j.kind, "status": j.status, "created_at": j.created_at} for j in jobs],
    }
    json.dump(archive, out, default=lambda value: value.isoformat(), indent=2, ensure_ascii=False)
    progress(1, 1)


def job_done_email(session: Session, job_id: int) -> dict | None:
    job = session.get(Job, job_id)
    user = session.get(User, job.owner_id) if job else None
    if job is None or user is None or not job.finished:
        return None
    subject, text, html = render_job_done(name=user.name, job_id=job.id, kind=job.kind, status=job.status,
                                          base_url=current_app.config["PUBLIC_BASE_URL"])
    # The ledger key outlives the row: no other job can have this id and this creation time.
    created = job.created_at.astimezone(timezone.utc)
    key = f"job-finished:{job.id}:{created:%Y%m%dT%H%M%S.%fZ}"
    return {"key": key, "to": user.email, "subject": subject, "text": text, "html": html}
