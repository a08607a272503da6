"""Heavy tasks (queue `heavy`): run one job by id, safe to run again after a worker dies."""
from __future__ import annotations

from celery import shared_task
from sqlalchemy.exc import OperationalError

from webapp.extensions import db
from webapp.jobs.runner import run_job


@shared_task(name="delta.jobs.run_job", bind=True, autoretry_for=(OperationalError,), max_retries=3,
             retry_backoff=10, retry_backoff_max=300, retry_jitter=True)
def run(self, job_id: int) -> str:
    return run_job(db.session, job_id)


@shared_task(name="delta.jobs.make_thumbnails", autoretry_for=(OperationalError,), max_retries=3,
             retry_backoff=10, retry_backoff_max=300, retry_jitter=True)
def make_thumbnails(user_id: int, key: str) -> None:
    """64 and 256 px thumbnails of an uploaded avatar; a corrupt image fails the task, logged."""
    from webapp.profiles.avatars import make_thumbnails as run

    run(user_id, key)
