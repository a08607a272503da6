"""Periodic work scheduled by Celery beat (see `beat_schedule` in tasks/__init__.py).

The outbox relay and the stall detector are short and frequent: they run on the `email` queue,
which no long export ever occupies (see `task_routes`).
"""
from __future__ import annotations

from celery import shared_task, signals

from webapp import housekeeping
from webapp.extensions import db
from webapp.jobs.stalls import requeue_stalled
from webapp.outbox import relay

RELAY = "delta.outbox.relay"


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


@shared_task(name=RELAY)
def relay_outbox() -> int:
    """Hand the broker every outbox task a commit could not (the broker was down)."""
    return relay.relay()


@shared_task(name="delta.outbox.purge")
def purge_outbox() -> int:
    return relay.purge(db.session)


@shared_task(name="delta.housekeeping.requeue_stalled_jobs")
def requeue_stalled_jobs() -> dict:
    return requeue_stalled(db.session)


@signals.worker_ready.connect
def _relay_at_start(sender=None, **_):
    """A worker that starts (after an outage, say) asks for one relay run at once, not at beat's next tick."""
    try:
        sender.app.send_task(RELAY)
    except Exception:  # the broker went away again: beat's relay will come
        pass
