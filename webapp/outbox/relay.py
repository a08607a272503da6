"""Hand outbox rows to Celery: right after their commit, and again later until the broker takes them.

- `hand_over(ids)`: after a commit (webapp/dispatch.py), that transaction's rows. On a connection
  of its own (the committing session cannot run SQL in `after_commit`), the rows are locked
  `FOR UPDATE SKIP LOCKED`, published, and marked sent in one transaction: a row is marked only
  once the broker took it, and two hand-overs never take the same row. After a broker failure
  commits do not try again for BROKER_BACKOFF seconds, so no request waits on a dead broker.
- `relay()`: every pending row older than GRACE (so a commit's own hand-over goes first). Celery
  beat runs it every OUTBOX_RELAY_SECONDS, a worker once at start, and each web or worker process
  after one of its commits at most that often (the embedded default has no beat).
- Eager mode (no broker): rows are claimed (marked sent by a conditional update), then run at
  once in a short-lived thread, which gives each task its own session and app context as a
  worker would have.

A row handed over twice (a crash between publish and mark) is harmless: tasks are idempotent
and the sent-email ledger (webapp/mail) sends no email twice.
"""
from __future__ import annotations

import logging
import threading
import time
import weakref
from datetime import timedelta

from flask import current_app
from prometheus_client import Gauge
from sqlalchemy import delete, func, select, update

from webapp.db import utcnow
from webapp.observability import task_request_id
from webapp.outbox.models import OutboxTask

log = logging.getLogger("webapp.outbox")
GRACE = timedelta(seconds=5)
BROKER_BACKOFF = 5.0  # seconds without hand-over attempts after the broker refused one
BATCH = 100
TABLE = OutboxTask.__table__
_gauge: list[Gauge] = []  # made on first use: in multiprocess mode a Gauge opens its file at once


def _pending_gauge() -> Gauge:
    if not _gauge:
        _gauge.append(Gauge("delta_outbox_pending", "Outbox tasks not yet handed to the broker, as last counted",
                            multiprocess_mode="mostrecent"))
    return _gauge[0]


class _State:
    """Per Celery app, per process: when the broker last failed and when to sweep next."""

    def __init__(self):
        self.down_until = 0.0
        self.next_sweep = 0.0


_states: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _state(celery) -> _State:
    state = _states.get(celery)
    if state is None:
        state = _states[celery] = _State()
    return state


def hand_over(ids: list[int]) -> None:
    """Send these committed rows now (unless the broker just failed), then sweep if it is time."""
    celery = current_app.extensions["celery"]
    state = _state(celery)
    if celery.conf.task_always_eager or time.monotonic() >= state.down_until:
        _send(celery, TABLE.c.id.in_(ids))
    now = time.monotonic()
    if now >= state.next_sweep and now >= state.down_until:
        relay(limit=BATCH)


def relay(limit: int | None = None) -> int:
    """Hand over pending rows older than GRACE, oldest first; returns how many went out."""
    celery = current_app.extensions["celery"]
    state = _state(celery)
    state.next_sweep = time.monotonic() + current_app.config["OUTBOX_RELAY_SECONDS"]
    total = 0
    while limit is None or total < limit:
        size = BATCH if limit is None else min(BATCH, limit - total)
        sent, complete = _send(celery, TABLE.c.created_at < utcnow() - GRACE, size)
        total += sent
        if not complete or sent < size:
            break
    _pending_gauge().set(pending_count())
    return total


def pending_count() -> int:
    with current_app.extensions["database"].connect() as connection:
        return connection.execute(select(func.count()).select_from(TABLE).where(TABLE.c.sent_at.is_(None))).scalar()


def purge(session) -> int:
    """Delete rows handed over more than OUTBOX_KEEP_HOURS ago (beat, hourly)."""
    cutoff = utcnow() - timedelta(hours=current_app.config["OUTBOX_KEEP_HOURS"])
    deleted = session.execute(delete(OutboxTask).where(OutboxTask.sent_at < cutoff)).rowcount
    session.commit()
    return deleted


def _send(celery, condition, limit: int | None = None) -> tuple[int, bool]:
    """Hand over the pending rows matching `condition`: (how many went, whether none failed)."""
    stmt = (select(TABLE.c.id, TABLE.c.task, TABLE.c.args, TABLE.c.request_id)
            .where(TABLE.c.sent_at.is_(None), condition).order_by(TABLE.c.id).limit(limit)
            .with_for_update(skip_locked=True))
    if celery.conf.task_always_eager:
        return _run_eagerly(celery, stmt), True
    sent, failed = [], None
    with current_app.extensions["database"].begin() as connection:
        rows = connection.execute(stmt).all()
        for row in rows:
            try:
                celery.tasks[row.task].apply_async(args=row.args, headers={"request_id": row.request_id})
            except Exception as exc:  # kombu.OperationalError, redis ConnectionError, timeouts, unknown task
                failed = (row.id, f"{type(exc).__name__}: {exc}"[:500])
                break
            sent.append(row.id)
        if sent:
            connection.execute(update(TABLE).where(TABLE.c.id.in_(sent)).values(
                sent_at=utcnow(), attempts=TABLE.c.attempts + 1, error=None))
        if failed:
            connection.execute(update(TABLE).where(TABLE.c.id == failed[0]).values(
                attempts=TABLE.c.attempts + 1, error=failed[1]))
    if failed:
        _state(celery).down_until = time.monotonic() + BROKER_BACKOFF
        _state(celery).next_sweep = 0.0  # the next try after the pause sweeps the backlog too
        log.warning("broker unavailable, %d outbox task(s) wait for the relay: %s", len(rows) - len(sent), failed[1])
    return len(sent), failed is None


def _run_eagerly(celery, stmt) -> int:
    """Claim each row (a conditional update: one claimer wins), then run the claimed tasks in order."""
    claimed = []
    with current_app.extensions["database"].begin() as connection:
        for row in connection.execute(stmt).all():
            if connection.execute(update(TABLE).where(TABLE.c.id == row.id, TABLE.c.sent_at.is_(None))
                                  .values(sent_at=utcnow(), attempts=TABLE.c.attempts + 1)).rowcount:
                claimed.append(row)
    for row in claimed:
        task = celery.tasks[row.task]

        def run(task=task, row=row):
            task_request_id.set(row.request_id)
            task.apply(args=row.args)

        worker = threading.Thread(target=run, name=f"eager:{row.task}")
        worker.start()
        worker.join()
    return len(claimed)
