"""The read side for the realtime process: one reader, fanned out to every subscriber in the process.

`EventFeed(app)` picks its source (webapp/events/sources.py): the Redis streams when REDIS_URL is
set, else the events table. One task reads (an XREAD BLOCK over the topics that have subscribers,
or a poll of the table every EVENTS_POLL_SECONDS) and puts each event in the bounded queue of each
subscriber of its topic, so 5,000 subscribers cost one read, not 5,000. When the source fails
(Redis restarted, the database blinked) the reader waits 0.1 s, doubling up to 5 s, and resumes
from the last id it had: nothing retained is lost.

Resuming with no gap and no duplicate (`subscribe(topic, after=last_id)`):
1. the subscription is registered first, so from the next read on every live event reaches it;
2. it waits until the reader has taken its topic in (`ready()`: a new Redis topic joins the
   XREAD from the stream's newest id at that moment);
3. it replays the retained events after `last_id` (`since`, in pages of EVENTS_KEEP_COUNT);
4. then it yields the live ones, dropping each whose id is not above the last one it yielded.
Ids compare per source: Redis stream ids `<ms>-<seq>` as (ms, seq), table ids as integers.

A subscriber that falls EVENTS_SUBSCRIBER_QUEUE events behind is dropped (`SlowSubscriber` is
raised once its queued events are consumed) instead of the process growing without bound; the
client reconnects with its last id and resumes.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque

from webapp.events.relay import uses_redis
from webapp.events.sources import Event, RedisSource, TableSource

__all__ = ["Event", "EventFeed", "SlowSubscriber", "Subscription"]
log = logging.getLogger("webapp.events")
STOP_SECONDS = 5.0  # longer than a read: an XREAD blocks at most RedisSource.BLOCK_MS


class SlowSubscriber(Exception):
    """The subscriber did not keep up and was dropped; it may resume from the last id it got."""


class EventFeed:
    """One per realtime process: `await start()`, `subscribe()` per stream, `await stop()` at the end."""

    def __init__(self, app):
        self.source = RedisSource(app) if uses_redis(app.config) else TableSource(app)
        self.queue_size = app.config["EVENTS_SUBSCRIBER_QUEUE"]
        self.replay_limit = app.config["EVENTS_KEEP_COUNT"]
        self.subscribers: dict[str, set[Subscription]] = {}
        self._joining: set[Subscription] = set()
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        await self.source.start()
        self._task = asyncio.create_task(self._run(), name="event-feed")

    async def stop(self) -> None:
        """Let the reader finish its read (cancelling a blocked XREAD can wedge the Redis client), then close."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_SECONDS)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        for subscription in [s for subs in self.subscribers.values() for s in subs]:
            subscription._end_with(StopAsyncIteration())
        await self.source.stop()

    def valid_id(self, last_id: str) -> bool:
        """Whether `last_id` is an id of this source (a malformed Last-Event-ID is the client's error)."""
        try:
            self.source.parse(last_id)
        except ValueError:
            return False
        return True

    async def since(self, topic: str, last_id: str | None, limit: int | None = None) -> list[Event]:
        """The retained events of `topic` after `last_id`, oldest first (at most `limit`); None → []."""
        if last_id is None:
            return []
        return await self.source.since(topic, last_id, limit or self.replay_limit)

    async def newest(self, topic: str) -> Event | None:
        """The topic's last retained event: a job's current state, as of an id `subscribe(after=)` can continue from.

        "The current state, then every change" without a race: `first = await newest(topic)`, send
        it, then `subscribe(topic, after=first.id)`: every later event exactly once, none older.
        """
        return await self.source.newest(topic)

    def subscribe(self, topic: str, after: str | None = None) -> Subscription:
        """Live events of `topic`, preceded by the retained ones after `after` when given (ValueError if malformed)."""
        floor = None if after is None else self.source.parse(after)
        subscription = Subscription(self, topic, after, floor)
        self.subscribers.setdefault(topic, set()).add(subscription)
        self._joining.add(subscription)
        return subscription

    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self.subscribers.values())

    def _remove(self, subscription: Subscription) -> None:
        self._joining.discard(subscription)
        subs = self.subscribers.get(subscription.topic)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self.subscribers[subscription.topic]
                self.source.unwatch(subscription.topic)

    async def _run(self) -> None:
        delay = 0.1
        while not self._stopping:
            try:
                for subscription in list(self._joining):
                    await self.source.watch(subscription.topic)
                    subscription._ready.set()
                    self._joining.discard(subscription)
                events = await self.source.read(set(self.subscribers))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("events: reading failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            for event in events:
                for subscription in list(self.subscribers.get(event.topic, ())):
                    subscription._offer(event)


class Subscription:
    """`async for event in subscription` (or `await anext(...)`); `await aclose()` when done."""

    def __init__(self, feed: EventFeed, topic: str, after: str | None, floor):
        self.feed, self.topic = feed, topic
        self._after, self._floor = after, floor
        self._live: deque = deque()  # a deque and one waiter: half the cost of an asyncio.Queue per event
        self._limit = feed.queue_size
        self._waiter: asyncio.Future | None = None
        self._ready = asyncio.Event()
        self._replay: deque | None = None
        self._more = False  # the last replayed page was full: fetch the next before going live
        self._end: BaseException | None = None
        self._sink = None

    def deliver_to(self, sink) -> None:
        """Hand each later live event to `sink(event) -> bool` in the reader's own loop while
        nothing is queued here: True → taken (sent, or not wanted), False → queued as before.
        One call per subscriber instead of waking its task: how a shared public event fans out
        to thousands of streams (webapp/realtime/websocket.py, sse.py). Order and the floor hold:
        the sink only sees an event while the consumer waits for one, every earlier one handled."""
        self._sink = sink

    async def ready(self) -> None:
        """Wait until live events reach this subscription (for the current state, see `EventFeed.newest`)."""
        await self._ready.wait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while True:
            event = await self._next_ready()
            if event is not None:
                return event
            await self._wait()

    async def batch(self, limit: int) -> list[Event]:
        """The events ready now (up to `limit`), waiting for one if there is none; [] when woken
        by `wake()` with nothing new (a stream's heartbeat). Raises the end, as `__anext__` does."""
        events: list[Event] = []
        while len(events) < limit:
            event = await self._next_ready()
            if event is not None:
                events.append(event)
            elif events:
                break
            else:
                await self._wait()
                if not self._live and self._end is None:
                    return events
        return events

    def wake(self) -> None:
        """End a pending `batch()` now (with what is ready, or [])."""
        self._wake()

    async def _next_ready(self) -> Event | None:
        """The next event to yield, replayed or live, without waiting for a new one (None)."""
        if self._replay is None:
            self._replay = deque()
            if self._after is not None:
                await self.ready()
                await self._replay_after(self._after)
        while True:
            if self._replay:
                event = self._replay.popleft()
                if not self._replay and self._more:
                    await self._replay_after(event.id)
            elif self._live:
                event = self._live.popleft()
            else:
                return None
            if self._floor is not None and event.key <= self._floor:
                continue
            self._floor = event.key
            return event

    async def _wait(self) -> None:
        if self._end is not None:
            raise self._end
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def aclose(self) -> None:
        if self._end is None:
            self._end_with(StopAsyncIteration())

    async def _replay_after(self, last_id: str) -> None:
        page = await self.feed.since(self.topic, last_id)
        self._more = len(page) >= self.feed.replay_limit
        self._replay.extend(page)

    def _offer(self, event: Event) -> None:
        if self._sink is not None and self._waiter is not None and not self._live and not self._replay \
                and self._replay is not None and not self._more and self._end is None:  # consumer idle, caught up
            if self._floor is not None and event.key <= self._floor:
                return
            try:
                taken = self._sink(event)
            except Exception:  # a broken sink must not stop the reader: back to the queue
                log.exception("events: a subscriber's sink failed on %s", self.topic)
                self._sink, taken = None, False
            if taken:
                self._floor = event.key
                return
        if len(self._live) >= self._limit:
            log.warning("events: a subscriber of %s fell %d events behind and was dropped", self.topic, self._limit)
            self._end_with(SlowSubscriber(f"more than {self._limit} events behind on {self.topic}"))
            return
        self._live.append(event)
        self._wake()

    def _end_with(self, end: BaseException) -> None:
        self._end = end
        self.feed._remove(self)
        self._ready.set()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
