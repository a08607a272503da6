"""After the commit: hand event rows to Redis (production), and keep the store within its retention.

- Embedded default (no REDIS_URL): the table is the store; `after_commit` only trims it, at most
  every EVENTS_TRIM_SECONDS per process. With Redis, beat's task trims the streams.
- With REDIS_URL: `after_commit` relays committed rows (one batch of BATCH: the oldest first, its
  own among them unless a backlog waits), then deletes them; `relay()` (Celery beat, every
  EVENTS_RELAY_SECONDS) drains what commits could not hand over
  (Redis down: commits stop trying for REDIS_BACKOFF seconds, so no request waits on a dead Redis).
  Relays are serialised (a waiting PostgreSQL advisory lock around select → XADD → delete; a
  thread lock on SQLite, which is one host), and rows are numbered in commit order
  (webapp/events/publish.py), so each stream receives its topic's events in commit order, from
  whichever host wrote them. The dedupe key in streams.ADD makes a repeated relay add nothing.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

from flask import current_app
from prometheus_client import Counter
from redis import RedisError
from sqlalchemy import delete, func, or_, select, text

from webapp.db import utcnow
from webapp.events import streams
from webapp.events.models import StoredEvent

log = logging.getLogger("webapp.events")
TABLE = StoredEvent.__table__
BATCH = 200
REDIS_BACKOFF = 5.0
RELAY_LOCK = 0x64656C74_61657601  # pg_advisory_xact_lock key: "deltaev" + 1
# Labelled, so no value file is opened at import (in multiprocess mode a plain Counter opens one at
# once, before gunicorn's config has made PROMETHEUS_MULTIPROC_DIR).
RELAYED = Counter("delta_events_relayed_total", "Events appended to their Redis stream", ["target"])
_sqlite_relay = threading.Lock()


class _State:
    """Per app, per process: when Redis last failed and when to trim next."""

    def __init__(self):
        self.down_until = 0.0
        self.next_trim = 0.0


def _state() -> _State:
    return current_app.extensions.setdefault("events_relay", _State())


def uses_redis(config) -> bool:
    return bool(config.get("REDIS_URL"))


def after_commit() -> None:
    """A transaction that published has committed: relay (with Redis), trim when it is time."""
    state = _state()
    try:
        if uses_redis(current_app.config) and time.monotonic() >= state.down_until:
            relay(batches=1)  # a backlog (after an outage) is beat's to drain, not this request's
        if not uses_redis(current_app.config) and trim_due():  # the streams are beat's to trim
            trim()
    except Exception:  # the write is committed whatever happens here; beat's relay retries
        log.exception("events: relay after commit failed; the rows wait for the next relay")


def relay(batches: int | None = None) -> int:
    """Append committed rows to their topics' streams, oldest first, BATCH at a time (all, or `batches`
    batches); returns how many were added."""
    redis, state = streams.client(), _state()
    ttl = current_app.config["EVENTS_TOPIC_IDLE_HOURS"] * 3600
    total = 0
    while True:
        with _relay_transaction() as connection:
            rows = connection.execute(select(TABLE).order_by(TABLE.c.id).limit(BATCH)).all()
            try:
                added = streams.append(redis, [_entry(row) for row in rows], ttl=ttl) if rows else 0
            except RedisError as exc:
                state.down_until = time.monotonic() + REDIS_BACKOFF
                log.warning("events: Redis unavailable, %d event(s) wait for the relay: %s", len(rows), exc)
                return total
            connection.execute(delete(TABLE).where(TABLE.c.id.in_([row.id for row in rows])))
        total += added
        RELAYED.labels("redis").inc(added)
        batches = None if batches is None else batches - 1
        if len(rows) < BATCH or batches == 0:
            return total


def _entry(row) -> dict:
    return {"topic": row.topic, "type": row.type, "data": json.dumps(row.data), "at": row.created_at.timestamp(),
            "dedupe": streams.dedupe_key(row.id, row.created_at)}


@contextmanager
def _relay_transaction():
    engine = current_app.extensions["database"]
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RELAY_LOCK})
            yield connection
    else:
        with _sqlite_relay, engine.begin() as connection:
            yield connection


def trim_due() -> bool:
    return time.monotonic() >= _state().next_trim


def trim() -> int:
    """Drop what retention allows: older than EVENTS_KEEP_SECONDS and beyond the newest EVENTS_KEEP_COUNT."""
    config, state = current_app.config, _state()
    state.next_trim = time.monotonic() + config["EVENTS_TRIM_SECONDS"]
    now = utcnow()
    if uses_redis(config):
        keep_after_ms = int((now.timestamp() - config["EVENTS_KEEP_SECONDS"]) * 1000)
        return streams.trim(streams.client(), keep_count=config["EVENTS_KEEP_COUNT"], keep_after_ms=keep_after_ms)
    return trim_table(now)


def trim_table(now) -> int:
    """The embedded store's retention, per topic; one aggregate finds the topics that need it."""
    config = current_app.config
    keep = config["EVENTS_KEEP_COUNT"]
    keep_after = now - timedelta(seconds=config["EVENTS_KEEP_SECONDS"])
    idle_before = now - timedelta(hours=config["EVENTS_TOPIC_IDLE_HOURS"])
    newest = func.max(TABLE.c.created_at)
    removed = 0
    with current_app.extensions["database"].begin() as connection:
        topics = connection.execute(select(TABLE.c.topic, newest.label("newest")).group_by(TABLE.c.topic)
                                    .having(or_(func.count() > keep, newest < idle_before))).all()
        for topic, last in topics:
            condition = TABLE.c.topic == topic
            if last >= idle_before:
                boundary = connection.execute(select(TABLE.c.id).where(condition).order_by(TABLE.c.id.desc())
                                              .offset(keep - 1).limit(1)).scalar()
                condition = condition & (TABLE.c.id < boundary) & (TABLE.c.created_at < keep_after)
            removed += connection.execute(delete(TABLE).where(condition)).rowcount
    return removed
