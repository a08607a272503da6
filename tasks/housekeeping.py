"""Periodic clean-up scheduled by Celery beat (see `beat_schedule` in tasks/__init__.py)."""
from __future__ import annotations

from celery import shared_task

from webapp import housekeeping
from webapp.extensions import db


@shared_task(name="delta.housekeeping.purge_auth_records")
def purge_auth_records() -> dict:
    return housekeeping.purge_auth_records(db.session)


@shared_task(name="delta.housekeeping.purge_old_jobs")
def purge_old_jobs() -> int:
    return housekeeping.purge_old_jobs(db.session)


@shared_task(name="delta.housekeeping.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    from webapp.idempotency import purge_expired

    return purge_expired(db.session)
