"""Publishing: an event is a row written in the transaction of the write that causes it.

`publish(topic, type, subject)` only notes the event on the session. When the session really
commits (not a savepoint, not the deferred commit of an Idempotency-Key request), `before_commit`
flushes, renders each subject (a model, through the renderer its door registered, so the event
carries exactly the REST resource's JSON) and inserts the rows; they commit or roll back with the
write. After the commit the rows go to the relay (webapp/events/relay.py). A rolled-back
transaction drops what it noted, and its rows never existed.

Commit order: on PostgreSQL the insert takes one transaction-level advisory lock, held until the
commit ends, so event ids are handed out in commit order (SQLite has one writer: the same holds).
Only transactions that publish wait on it, and only for their insert and commit.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import Counter
from sqlalchemy import event, text

from webapp.db import AppSession
from webapp.events import relay
from webapp.events.models import StoredEvent
from webapp.extensions import db

PENDING = "delta.events.pending"  # session.info: (topic, type, subject, refresh) noted so far
WRITTEN = "delta.events.written"  # session.info: rows inserted by the commit under way
ORDER_LOCK = 0x64656C74_61657600  # pg_advisory_xact_lock key: "deltaev"

PUBLISHED = Counter("delta_events_published_total", "Events committed, by type", ["type"])
_renderers: dict[type, Callable[[Any], dict]] = {}


def register_renderer(kind: type, render: Callable[[Any], dict]) -> None:
    """How an event's `data` is made from a `kind` instance: the doors register their resource shape."""
    _renderers[kind] = render


def publish(topic: str, type: str, subject, *, refresh: bool = False, session=None) -> None:
    """Note event `type` on `topic` about `subject` (a model instance, or a JSON-ready dict).

    It is stored when the caller's session commits; `refresh` reloads the subject first (for
    rows changed by UPDATE statements rather than through the instance).
    """
    session = session if session is not None else db.session()
    session.info.setdefault(PENDING, []).append((topic, type, subject, refresh))


def render(session, subject, refresh: bool = False) -> dict:
    if isinstance(subject, dict):
        return subject
    if refresh:
        session.refresh(subject)
    try:
        renderer = _renderers[type(subject)]
    except KeyError:
        raise LookupError(f"no event renderer registered for {type(subject).__name__}") from None
    return renderer(subject)


@event.listens_for(AppSession, "before_commit")
def _store(session) -> None:
    pending = session.info.get(PENDING)
    if not pending or session.in_nested_transaction():
        return
    del session.info[PENDING]
    session.flush()  # ids and defaults of the subjects, and every other write before the lock
    rows = [StoredEvent(topic=topic, type=kind, data=render(session, subject, refresh))
            for topic, kind, subject, refresh in pending]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ORDER_LOCK})
    session.add_all(rows)
    session.info.setdefault(WRITTEN, []).extend(rows)


@event.listens_for(AppSession, "after_commit")
def _committed(session) -> None:
    rows = session.info.get(WRITTEN)
    if not rows or session.in_nested_transaction():
        return
    del session.info[WRITTEN]
    for row in rows:
        PUBLISHED.labels(row.type).inc()
    relay.after_commit()


@event.listens_for(AppSession, "after_soft_rollback")
def _rolled_back(session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(PENDING, None)
        session.info.pop(WRITTEN, None)
