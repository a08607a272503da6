"""Ask for a task by name, in the transaction of the write that wants it (the transactional outbox).

`enqueue` adds an outbox row to the current session; it commits or rolls back with the caller's
write, so a committed write always has its email or task and a rolled-back one has none. Once the
session really commits (not a savepoint), the rows it wrote are handed to Celery on a connection
of their own (webapp/outbox/relay.py); a broker that is down leaves them for the relay, which
retries until the broker takes them. Services never import the tasks package: names suffice.
"""
from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import event, inspect

from webapp.db import AppSession
from webapp.extensions import db
from webapp.observability import current_request_id
from webapp.outbox import relay
from webapp.outbox.models import OutboxTask

log = logging.getLogger("webapp.dispatch")
PENDING = "delta.outbox"  # session.info key: the rows this transaction asked for


def enqueue(name: str, *args) -> OutboxTask:
    """Record task `name(*args)` in the current session; it goes out after the caller's commit."""
    if name not in current_app.extensions["celery"].tasks:
        raise LookupError(f"no task named {name!r}")
    row = OutboxTask(task=name, args=list(args), request_id=current_request_id(), attempts=0)
    session = db.session()
    session.add(row)
    session.info.setdefault(PENDING, []).append(row)
    return row


def enqueue_alone(name: str, *args) -> None:
    """A task no write asks for (a password-reset lookup): recorded and committed on its own."""
    session = AppSession()
    try:
        row = OutboxTask(task=name, args=list(args), request_id=current_request_id(), attempts=0)
        session.add(row)
        session.info[PENDING] = [row]
        session.commit()
    finally:
        session.close()


@event.listens_for(AppSession, "after_commit")
def _after_commit(session) -> None:
    rows = session.info.get(PENDING)
    if not rows or session.in_nested_transaction():  # a savepoint: the rows wait for the real commit
        return
    del session.info[PENDING]
    ids = [identity[0] for identity in (inspect(row).identity for row in rows) if identity]
    try:
        relay.hand_over(ids)
    except Exception:  # the write is committed whatever happens here; the relay retries
        log.exception("outbox hand-over failed; rows %s wait for the relay", ids)


@event.listens_for(AppSession, "after_soft_rollback")
def _after_rollback(session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(PENDING, None)
