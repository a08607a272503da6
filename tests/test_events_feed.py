"""Realtime events, read side: the one reader a realtime process runs (webapp/events/feed.py).

Each test runs on both sources: the events table (the embedded default) and the Redis streams (a
second app, a "host" with REDIS_URL, over the same database; skipped without TEST_REDIS_URL).
Events are produced by real writes through the REST door, committed while the reader runs.
"""
from __future__ import annotations

import asyncio
import os
import threading

import pytest
from redis import Redis

from conf import settings
from webapp import create_app
from webapp.events.feed import EventFeed, SlowSubscriber

DEADLINE = 30  # seconds: a hung scenario fails instead of hanging the suite


def make_host(app, redis_url: str):
    """Another app over the same database and secrets, relaying its events to `redis_url`."""
    config = settings.TestingConfig().override(INSTANCE_PATH=app.config["INSTANCE_PATH"], MEDIA_ROOT=app.config["MEDIA_ROOT"],
                                      DATABASE_URL=app.config["DATABASE_URL"], REDIS_URL=redis_url)
    return create_app(config)


@pytest.fixture(params=["table", "redis"])
def host(request, app):
    """The app whose writes the feed reads: the embedded one, or one with Redis streams."""
    if request.param == "table":
        yield app
        return
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set")
    Redis.from_url(url).flushdb()
    other = make_host(app, url)
    yield other
    other.extensions["database"].dispose()
    app.extensions["celery"].set_default()


@pytest.fixture
def author(make_user, token):
    user = make_user()
    return {"Authorization": f"Bearer {token(user)}"}


def post(host, headers, title: str) -> int:
    response = host.test_client().post("/api/v1/posts", json={"title": title, "published": True}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def run(scenario):
    return asyncio.run(asyncio.wait_for(scenario, DEADLINE))


def origin(feed: EventFeed) -> str:
    """The id before every event of the source."""
    return "0" if feed.valid_id("0") else "0-0"


def test_a_resumed_subscriber_gets_what_it_missed_then_live_events_each_once_in_order(host, author):
    for n in range(3):
        post(host, author, f"missed {n}")

    async def scenario():
        feed = EventFeed(host)
        await feed.start()
        try:
            seen = await feed.since("posts", origin(feed))
            subscription = feed.subscribe("posts", after=seen[0].id)
            writers = [threading.Thread(target=lambda name=name: [post(host, author, f"{name} {n}") for n in range(10)])
                       for name in ("live", "also live")]
            for writer in writers:  # two concurrent writers race the replay: no gap, no duplicate may come of it
                writer.start()
            got = [await anext(subscription) for _ in range(2 + 20)]
            for writer in writers:
                writer.join()
            await subscription.aclose()
            return seen, got, await feed.since("posts", seen[0].id)
        finally:
            await feed.stop()

    seen, got, stored = run(scenario())
    assert [event.data["title"] for event in seen] == ["missed 0", "missed 1", "missed 2"]
    assert [event.id for event in got] == [event.id for event in stored]
    titles = [event.data["title"] for event in got]
    assert titles[:2] == ["missed 1", "missed 2"]
    for name in ("live", "also live"):  # each writer's posts in its commit order
        assert [title for title in titles if title.rsplit(" ", 1)[0] == name] == [f"{name} {n}" for n in range(10)]
    assert {event.type for event in got} == {"post.published"}


def test_a_live_subscriber_gets_only_what_is_committed_after_it_is_ready(host, author):
    post(host, author, "before")

    async def scenario():
        feed = EventFeed(host)
        await feed.start()
        try:
            subscription = feed.subscribe("posts")
            other_topic = feed.subscribe("jobs/1")
            await subscription.ready()
            await other_topic.ready()
            await asyncio.to_thread(post, host, author, "after")
            event = await anext(subscription)
            await subscription.aclose()
            with pytest.raises(StopAsyncIteration):
                await anext(subscription)
            await other_topic.aclose()
            return event, feed.subscriber_count()
        finally:
            await feed.stop()

    event, remaining = run(scenario())
    assert event.data["title"] == "after"
    assert remaining == 0


def test_a_subscriber_that_falls_behind_is_dropped_and_others_are_not(host, author):
    async def scenario():
        feed = EventFeed(host)
        await feed.start()
        try:
            feed.queue_size = 3
            slow = feed.subscribe("posts")
            feed.queue_size = 100  # the reader delivers in batches: one that keeps up may lag a batch
            fast = feed.subscribe("posts")
            await slow.ready()
            await fast.ready()
            await asyncio.to_thread(lambda: [post(host, author, f"post {n}") for n in range(6)])
            fast_got = []
            for _ in range(6):
                fast_got.append(await anext(fast))
            slow_got = []
            with pytest.raises(SlowSubscriber):
                while True:
                    slow_got.append(await anext(slow))
            return fast_got, slow_got, feed.subscriber_count()
        finally:
            await feed.stop()

    fast_got, slow_got, remaining = run(scenario())
    assert [event.data["title"] for event in fast_got] == [f"post {n}" for n in range(6)]
    assert [event.data["title"] for event in slow_got] == ["post 0", "post 1", "post 2"]
    assert remaining == 1


def test_a_malformed_last_event_id_is_refused(host):
    feed = EventFeed(host)
    for bad in ("", "abc", "-1", "1-2-3", "9" * 40, "1.5"):
        assert not feed.valid_id(bad)
        with pytest.raises(ValueError):
            feed.subscribe("posts", after=bad)
    assert feed.valid_id(origin(feed))
    assert feed.subscriber_count() == 0


def test_the_newest_event_then_every_later_one_once(host, author):
    """How a job stream starts: its current state (the newest event), then each change after it."""
    for title in ("first", "second"):
        post(host, author, title)

    async def scenario():
        feed = EventFeed(host)
        await feed.start()
        try:
            nothing = await feed.newest("jobs/404")
            newest = await feed.newest("posts")
            subscription = feed.subscribe("posts", after=newest.id)
            await asyncio.to_thread(post, host, author, "third")
            following = await anext(subscription)
            await subscription.aclose()
            return nothing, newest, following
        finally:
            await feed.stop()

    nothing, newest, following = run(scenario())
    assert nothing is None
    assert (newest.data["title"], following.data["title"]) == ("second", "third")


def test_a_long_replay_comes_in_pages_with_nothing_skipped(host, author):
    for n in range(8):
        post(host, author, f"missed {n}")

    async def scenario():
        feed = EventFeed(host)
        feed.replay_limit = 3  # pages of 3 instead of EVENTS_KEEP_COUNT
        await feed.start()
        try:
            subscription = feed.subscribe("posts", after=origin(feed))
            got = [await anext(subscription) for _ in range(8)]
            await asyncio.to_thread(post, host, author, "live")
            got.append(await anext(subscription))
            await subscription.aclose()
            return got
        finally:
            await feed.stop()

    got = run(scenario())
    assert [event.data["title"] for event in got] == [f"missed {n}" for n in range(8)] + ["live"]
