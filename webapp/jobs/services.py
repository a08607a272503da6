"""Jobs: create (with their run asked for in the same commit), read with permissions, cancel, hand out the result."""
from __future__ import annotations

import os
from pathlib import Path

from flask import current_app
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from webapp.auth.permissions import Permission, can, require
from webapp.db import MAX_ID, utcnow
from webapp.dispatch import enqueue
from webapp.errors import Conflict, Invalid, NotFound
from webapp.events import publish
from webapp.jobs.models import Job
from webapp.settings_paths import job_results_dir

RUN_TASK = "delta.jobs.run_job"
FORMATS = ("csv", "json")
JOB_PROGRESS = "job.progress"


def announce(session: Session, job: Job) -> None:
    """The realtime event of a change of the job's status or progress, stored at commit with its state then."""
    publish(f"jobs/{job.id}", JOB_PROGRESS, job, refresh=True, session=session)


def _create(session: Session, actor, kind: str, params: dict, *, upload=None) -> Job:
    """Store the job and its run (the outbox) in one commit.

    A broker that is down is no error: the job stays `queued` and the outbox hands its run over
    once the broker is back (webapp/outbox/relay.py), so the answer is the same 202 either way.
    """
    job = Job(kind=kind, owner_id=actor.id, status="queued", progress=0, params=params)
    session.add(job)
    session.flush()
    if upload is not None:
        job.params = {**params, "source": str(_save_upload(job, upload))}
    enqueue(RUN_TASK, job.id)
    announce(session, job)
    session.commit()
    session.refresh(job)  # an eager run has moved it on already
    session.commit()
    return job


def request_user_export(session: Session, actor, fmt: str = "csv") -> Job:
    require(actor, Permission.MANAGE_USERS, message="Only admins may export users.")
    if fmt not in FORMATS:
        raise Invalid("Validation failed.", errors={"format": [f"Must be one of: {', '.join(FORMATS)}."]})
    return _create(session, actor, "user-export", {"format": fmt})


def request_user_import(session: Session, actor, upload) -> Job:
    """`upload`: a binary file object holding CSV `name,email[,role]`."""
    require(actor, Permission.MANAGE_USERS, message="Only admins may import users.")
    return _create(session, actor, "user-import", {}, upload=upload)


def request_account_export(session: Session, actor) -> Job:
    require(actor, Permission.REQUEST_JOB, actor)
    return _create(session, actor, "account-export", {})


def _save_upload(job: Job, upload) -> Path:
    limit = current_app.config["IMPORT_MAX_BYTES"]
    folder = job_results_dir(current_app.config) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job.id}.csv"
    size = 0
    with open(path, "wb") as handle:
        while chunk := upload.read(64 * 1024):
            size += len(chunk)
            if size > limit:
                handle.close()
                os.unlink(path)
                raise Invalid("Validation failed.", errors={"file": [f"Larger than {limit} bytes."]})
            handle.write(chunk)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            while handle.read(64 * 1024):
                pass
    except UnicodeDecodeError:
        os.unlink(path)
        raise Invalid("Validation failed.", errors={"file": ["Not a UTF-8 CSV file."]}) from None
    return path


def jobs_query(actor) -> Select:
    """The jobs `actor` may see, newest first: their own, or every job for admins."""
    require(actor, Permission.VIEW_JOB, actor)
    stmt = select(Job).order_by(Job.id.desc())
    if not can(actor, Permission.VIEW_JOB):  # no job named: may the actor see every job?
        stmt = stmt.where(Job.owner_id == actor.id)
    return stmt


def list_jobs(session: Session, actor, *, offset: int = 0, limit: int = 20) -> tuple[list[Job], int]:
    stmt = jobs_query(actor)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return list(session.scalars(stmt.offset(offset).limit(limit))), total


def get_job(session: Session, actor, job_id) -> Job:
    """A job its owner or an admin may see; anyone else is told it does not exist."""
    try:
        job_id = int(job_id)
    except (TypeError, ValueError):
        raise NotFound("Job not found.") from None
    job = session.get(Job, job_id) if 0 < job_id <= MAX_ID else None
    if job is None or not can(actor, Permission.VIEW_JOB, job):
        raise NotFound("Job not found.")
    return job


def cancel_job(session: Session, actor, job: Job) -> Job:
    """Cancel a queued or running job; the worker stops at its next batch."""
    require(actor, Permission.CANCEL_JOB, job)
    session.refresh(job, with_for_update=True)
    if job.finished:
        session.rollback()
        raise Conflict(f"The job has already {job.status}.")
    job.status, job.finished_at = "cancelled", utcnow()
    announce(session, job)
    session.commit()
    return job


def result_file(actor, job: Job) -> tuple[Path, str, str]:
    """(path, download name, content type) of a succeeded job's result; 409 before."""
    require(actor, Permission.VIEW_JOB, job)
    if job.status != "succeeded" or not job.result_path:
        raise Conflict(f"The job is {job.status}; its result is not ready.")
    path = Path(job.result_path)
    if not path.is_file():
        raise NotFound("The result file has expired.")
    return path, job.result_name or path.name, job.result_type or "application/octet-stream"


def job_view(job: Job) -> dict:
    return {
        "id": job.id, "kind": job.kind, "owner_id": job.owner_id, "status": job.status,
        "progress": job.progress, "params": {k: v for k, v in (job.params or {}).items() if k != "source"},
        "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
        "error": job.error,
        "result_url": f"/api/v1/jobs/{job.id}/result" if job.status == "succeeded" else None,
    }
