"""Where the realtime process reads events from: the events table (embedded) or the Redis streams.

Both offer the same small interface to feed.py, which runs exactly one `read()` at a time:
`start()`/`stop()`, `parse(id)` (a comparable key; ValueError for a malformed id), `watch(topic)`
(from now on, `read()` includes this topic), `unwatch(topic)`, `read(topics)` (the next batch of
events, waiting a little when there is none), `since(topic, after, limit)` (the replay) and
`newest(topic)` (the topic's last retained event, or None).
"""
from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field

from redis import asyncio as aioredis
from sqlalchemy import func, select

from webapp.db import MAX_ID
from webapp.events import streams
from webapp.events.models import StoredEvent

TABLE = StoredEvent.__table__
ROW_ID = re.compile(r"^\d{1,19}$")
READ_BATCH = 1000


@dataclass(frozen=True)
class Event:
    """One event as subscribers see it; `id` is what SSE sends and Last-Event-ID brings back."""

    id: str
    topic: str
    type: str
    data: dict
    at: float = 0.0  # when the write committed (epoch seconds): for delivery-lag metrics
    key: object = field(default=None, compare=False, repr=False)  # `id` parsed, for ordering


class TableSource:
    """Embedded: poll the table for rows past the last id seen (ids are in commit order)."""

    def __init__(self, app):
        self.engine = app.extensions["database"]
        self.interval = app.config["EVENTS_POLL_SECONDS"]
        self.cursor = 0

    def parse(self, value: str) -> int:
        if not isinstance(value, str) or not ROW_ID.match(value) or int(value) > MAX_ID:
            raise ValueError(f"not an event id: {value!r}")
        return int(value)

    async def start(self) -> None:
        self.cursor = await asyncio.to_thread(self._scalar, select(func.coalesce(func.max(TABLE.c.id), 0)))

    async def stop(self) -> None:
        """Nothing to close: the engine belongs to the app."""

    async def watch(self, topic: str) -> None:
        """Every topic is read already: the cursor is global."""

    def unwatch(self, topic: str) -> None:
        """Every topic is read already: the cursor is global."""

    async def read(self, topics) -> list[Event]:
        await asyncio.sleep(self.interval)
        rows = await asyncio.to_thread(self._rows, select(TABLE).where(TABLE.c.id > self.cursor)
                                       .order_by(TABLE.c.id).limit(READ_BATCH))
        if rows:
            self.cursor = rows[-1].id
        return [self._event(row) for row in rows if row.topic in topics]

    async def since(self, topic: str, after: str, limit: int) -> list[Event]:
        rows = await asyncio.to_thread(self._rows, select(TABLE).where(
            TABLE.c.topic == topic, TABLE.c.id > self.parse(after)).order_by(TABLE.c.id).limit(limit))
        return [self._event(row) for row in rows]

    async def newest(self, topic: str) -> Event | None:
        rows = await asyncio.to_thread(self._rows, select(TABLE).where(TABLE.c.topic == topic)
                                       .order_by(TABLE.c.id.desc()).limit(1))
        return self._event(rows[0]) if rows else None

    def _rows(self, stmt) -> list:
        with self.engine.connect() as connection:
            return connection.execute(stmt).all()

    def _scalar(self, stmt):
        with self.engine.connect() as connection:
            return connection.execute(stmt).scalar()

    @staticmethod
    def _event(row) -> Event:
        return Event(str(row.id), row.topic, row.type, row.data, row.created_at.timestamp(), row.id)


class RedisSource:
    """Production: one XREAD BLOCK over the streams of every watched topic, from each one's last id."""

    BLOCK_MS = 250  # a newly watched topic joins the XREAD within this

    def __init__(self, app):
        self.url = app.config["REDIS_URL"]
        self.redis: aioredis.Redis | None = None
        self.cursors: dict[str, str] = {}

    def parse(self, value: str) -> tuple[int, int]:
        return streams.parse_id(value)

    async def start(self) -> None:
        self.redis = aioredis.Redis.from_url(self.url, decode_responses=True, socket_connect_timeout=2,
                                             socket_timeout=self.BLOCK_MS / 1000 + 5)

    async def stop(self) -> None:
        await self.redis.aclose()

    async def watch(self, topic: str) -> None:
        if topic not in self.cursors:
            newest = await self.redis.xrevrange(streams.stream_key(topic), count=1)
            self.cursors[topic] = newest[0][0] if newest else "0-0"

    def unwatch(self, topic: str) -> None:
        self.cursors.pop(topic, None)

    async def read(self, topics) -> list[Event]:
        wanted = {streams.stream_key(topic): self.cursors[topic] for topic in topics if topic in self.cursors}
        if not wanted:
            await asyncio.sleep(self.BLOCK_MS / 1000)
            return []
        reply = await self.redis.xread(wanted, count=READ_BATCH, block=self.BLOCK_MS)
        events = []
        for key, entries in reply or []:
            topic = key[len(streams.PREFIX):]
            if topic not in self.cursors:  # unwatched while the XREAD ran
                continue
            cursor = self.parse(self.cursors[topic])  # moved on if it was watched afresh meanwhile
            fresh = [event for event in (self._event(topic, entry_id, fields) for entry_id, fields in entries)
                     if event.key > cursor]
            if fresh:
                self.cursors[topic] = fresh[-1].id
                events.extend(fresh)
        return events

    async def since(self, topic: str, after: str, limit: int) -> list[Event]:
        self.parse(after)
        entries = await self.redis.xrange(streams.stream_key(topic), min=f"({after}", max="+", count=limit)
        return [self._event(topic, entry_id, fields) for entry_id, fields in entries]

    async def newest(self, topic: str) -> Event | None:
        entries = await self.redis.xrevrange(streams.stream_key(topic), count=1)
        return self._event(topic, *entries[0]) if entries else None

    def _event(self, topic: str, entry_id: str, fields: dict) -> Event:
        return Event(entry_id, topic, fields["type"], json.loads(fields["data"]), float(fields.get("at", 0)),
                     self.parse(entry_id))
