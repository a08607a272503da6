"""Realtime events, the store: retention, and the relay to Redis streams (exactly once, in commit order, retried).

Retention is the contract's "at least one hour and the last 10,000 events per topic", checked on
rows and stream entries backdated by the test. The Redis tests use hosts (apps with REDIS_URL)
over the test database: two of them writing at once, and one whose Redis (a throw-away server)
is killed and started again.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import func, insert, select

from tests.servers import throwaway_redis  # noqa: F401  (fixture)
from tests.test_events_feed import make_host, post
from webapp.db import utcnow
from webapp.events import relay, streams
from webapp.events.feed import EventFeed
from webapp.events.models import StoredEvent

TABLE = StoredEvent.__table__
KEEP = 10_000


@pytest.fixture
def author(make_user, token):
    return {"Authorization": f"Bearer {token(make_user())}"}


@pytest.fixture
def redis_hosts(app, redis_url):
    """`make()` → another app relaying to TEST_REDIS_URL (emptied); the Redis client to look at it."""
    made = []

    def make(url=redis_url):
        made.append(make_host(app, url))
        return made[-1]

    yield make, Redis.from_url(redis_url, decode_responses=True)
    for host in made:
        host.extensions["database"].dispose()
    app.extensions["celery"].set_default()


def rows(app, topic):
    with app.app_context(), app.extensions["database"].connect() as connection:
        return connection.execute(select(TABLE.c.id).where(TABLE.c.topic == topic).order_by(TABLE.c.id)).scalars().all()


def test_the_table_keeps_an_hour_and_the_last_10000_of_each_topic(app):
    now = utcnow()
    old, recent, idle = now - timedelta(hours=2), now - timedelta(minutes=30), now - timedelta(days=8)
    batches = [("many-old", old, KEEP + 50), ("many-recent", recent, KEEP + 100), ("few-old", old, 20),
               ("idle", idle, 5), ("mixed", old, 30), ("mixed", recent, KEEP - 10)]
    with app.app_context(), app.extensions["database"].begin() as connection:
        for topic, at, count in batches:
            connection.execute(insert(TABLE), [{"topic": topic, "type": "test", "data": {}, "created_at": at}] * count)
    before = {topic: rows(app, topic) for topic in ("many-old", "many-recent", "few-old", "idle", "mixed")}
    with app.app_context():
        removed = relay.trim_table(now)
    after = {topic: rows(app, topic) for topic in before}
    assert after["many-old"] == before["many-old"][-KEEP:]  # the newest 10,000 of old events
    assert after["many-recent"] == before["many-recent"]  # all: none is an hour old
    assert after["few-old"] == before["few-old"]  # all: fewer than 10,000
    assert after["idle"] == []  # a topic silent for EVENTS_TOPIC_IDLE_HOURS goes whole
    assert after["mixed"] == before["mixed"][-KEEP:]  # old ones beyond the newest 10,000 only
    assert removed == 50 + 5 + 20


def test_the_streams_keep_an_hour_and_the_last_10000_of_each_topic(app, redis_hosts):
    make, redis = redis_hosts
    host = make()
    now_ms = int(time.time() * 1000)
    old, recent = now_ms - 2 * 3600_000, now_ms - 1800_000
    batches = {"many-old": [(old, n) for n in range(KEEP + 50)], "many-recent": [(recent, n) for n in range(KEEP + 50)],
               "few-old": [(old, n) for n in range(20)],
               "mixed": [(old, n) for n in range(30)] + [(recent, n) for n in range(KEEP - 10)]}
    pipe = redis.pipeline(transaction=False)
    for topic, entries in batches.items():
        for ms, seq in entries:
            pipe.xadd(streams.stream_key(topic), {"type": "test", "data": "{}", "at": "0"}, id=f"{ms}-{seq}")
        pipe.sadd(streams.TOPICS, topic)
    pipe.sadd(streams.TOPICS, "expired")
    pipe.execute()
    ids = {topic: [f"{ms}-{seq}" for ms, seq in entries] for topic, entries in batches.items()}
    with host.app_context():
        removed = relay.trim()

    def kept(topic):
        return [entry_id for entry_id, _ in redis.xrange(streams.stream_key(topic))]

    assert kept("many-old") == ids["many-old"][-KEEP:]
    assert kept("many-recent") == ids["many-recent"]
    assert kept("few-old") == ids["few-old"]
    assert kept("mixed") == ids["mixed"][-KEEP:]
    assert redis.smembers(streams.TOPICS) == set(batches)  # the expired topic is forgotten
    assert removed == 50 + 20


def test_two_hosts_writing_at_once_put_every_event_on_the_stream_once_in_commit_order(app, redis_hosts, author):
    make, redis = redis_hosts
    hosts = [make(), make()]
    written: list[int] = []

    def write(host, name):
        for n in range(25):
            written.append(post(host, author, f"{name} {n}"))

    threads = [threading.Thread(target=write, args=(host, f"host {i}")) for i, host in enumerate(hosts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = redis.xrange(streams.stream_key("posts"))
    post_ids = [json.loads(fields["data"])["id"] for _, fields in entries]
    assert sorted(post_ids) == sorted(written) and len(written) == 50  # each once
    committed_at = [float(fields["at"]) for _, fields in entries]
    assert committed_at == sorted(committed_at)  # the stream's order is the commit order
    assert rows(app, "posts") == []  # every row relayed and deleted


def test_events_committed_while_redis_is_down_are_relayed_once_when_it_is_back(app, author, throwaway_redis):
    host = make_host(app, throwaway_redis.url)
    try:
        throwaway_redis.kill()
        post_id = post(host, author, "written while Redis was down")  # the write commits all the same
        assert len(rows(app, "posts")) == 1
        throwaway_redis.start()
        with host.app_context():
            assert host.extensions["celery"].tasks["delta.events.relay"].apply().get()["relayed"] == 1
            assert relay.relay() == 0
        entries = Redis.from_url(throwaway_redis.url, decode_responses=True).xrange(streams.stream_key("posts"))
        assert [(fields["type"], json.loads(fields["data"])) for _, fields in entries] == [
            ("post.published", host.test_client().get(f"/api/v1/posts/{post_id}").get_json())]
        assert rows(app, "posts") == []
    finally:
        host.extensions["database"].dispose()
        app.extensions["celery"].set_default()


def test_a_relay_that_died_between_xadd_and_delete_adds_nothing_twice(app, redis_hosts):
    make, redis = redis_hosts
    host = make()
    with host.app_context(), host.extensions["database"].begin() as connection:
        row = connection.execute(insert(TABLE).returning(TABLE), [
            {"topic": "posts", "type": "post.published", "data": {"id": 1}, "created_at": utcnow()}]).one()
    # What the relay that died did: XADD (with the row's dedupe key), but no DELETE.
    assert streams.append(redis, [{"topic": "posts", "type": row.type, "data": '{"id": 1}', "at": row.created_at.timestamp(),
                                   "dedupe": streams.dedupe_key(row.id, row.created_at)}], ttl=3600) == 1
    with host.app_context():
        assert relay.relay() == 0
    assert redis.xlen(streams.stream_key("posts")) == 1
    assert rows(app, "posts") == []


def test_the_reader_resumes_after_redis_restarts(app, author, throwaway_redis):
    host = make_host(app, throwaway_redis.url)

    async def scenario():
        feed = EventFeed(host)
        await feed.start()
        try:
            subscription = feed.subscribe("posts")
            await subscription.ready()
            await asyncio.to_thread(post, host, author, "before")
            before = await anext(subscription)
            await asyncio.to_thread(throwaway_redis.kill)
            await asyncio.sleep(0.5)  # the reader meets the dead connection and backs off
            await asyncio.to_thread(throwaway_redis.start)
            await asyncio.to_thread(post, host, author, "after")
            after = await anext(subscription)
            await subscription.aclose()
            return before, after
        finally:
            await feed.stop()

    try:
        before, after = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        host.extensions["database"].dispose()
        app.extensions["celery"].set_default()
    assert (before.data["title"], after.data["title"]) == ("before", "after")
    assert streams.parse_id(after.id) > streams.parse_id(before.id)


def test_every_published_event_is_counted(app, author):
    from prometheus_client import REGISTRY

    def published():
        return REGISTRY.get_sample_value("delta_events_published_total", {"type": "post.published"}) or 0

    start = published()
    post(app, author, "counted")
    assert published() == start + 1
    with app.app_context(), app.extensions["database"].connect() as connection:
        assert connection.execute(select(func.count()).select_from(TABLE)).scalar() == 1
