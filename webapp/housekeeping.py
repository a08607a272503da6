"""Periodic clean-up (run by Celery beat): dead sign-in records, spent tokens, old jobs and files."""
from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from webapp.accounts.models import AccountToken
from webapp.auth.models import AuthSession
from webapp.db import utcnow
from webapp.jobs.models import FINISHED, Job
from webapp.mail.models import SentEmail
from webapp.settings_paths import job_results_dir

log = logging.getLogger("webapp.housekeeping")
SENT_EMAIL_DAYS = 30  # far longer than any task can be redelivered


def purge_auth_records(session: Session) -> dict:
    now = utcnow()
    counts = {
        "sessions": session.execute(delete(AuthSession).where(or_(
            AuthSession.expires_at < now, AuthSession.revoked_at < now - timedelta(days=1)))).rowcount,
        "tokens": session.execute(delete(AccountToken).where(or_(
            AccountToken.expires_at < now, AccountToken.used_at.is_not(None)))).rowcount,
        "sent_emails": session.execute(delete(SentEmail).where(
            SentEmail.created_at < now - timedelta(days=SENT_EMAIL_DAYS))).rowcount,
    }
    session.commit()
    log.info("purged %s", counts)
    return counts


def purge_old_jobs(session: Session) -> int:
    """Delete finished jobs past retention with their result and upload files."""
    cutoff = utcnow() - timedelta(days=current_app.config["JOB_RETENTION_DAYS"])
    jobs = session.execute(select(Job.id, Job.result_path, Job.params).where(
        Job.status.in_(FINISHED), Job.finished_at < cutoff)).all()
    for job_id, result_path, params in jobs:
        for path in (result_path, (params or {}).get("source")):
            if path:
                Path(path).unlink(missing_ok=True)
    if jobs:
        session.execute(delete(Job).where(Job.id.in_([row.id for row in jobs])))
    session.commit()
    folder = job_results_dir(current_app.config)
    live = {row.id for row in session.execute(select(Job.id))}
    session.rollback()
    for path in list(folder.glob("*")) + list((folder / "uploads").glob("*")) if folder.exists() else []:
        job_id = path.name.lstrip(".").split("-")[0].split(".")[0]
        if path.is_file() and job_id.isdigit() and int(job_id) not in live:
            path.unlink(missing_ok=True)
    return len(jobs)
