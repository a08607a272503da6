"""Realtime on every host: two web hosts and two realtime processes over one PostgreSQL and one Redis.

Two gunicorn masters (deploy/gunicorn.conf.py) and two `uvicorn webapp.realtime.asgi:app`
processes share TEST_DATABASE_URL and TEST_REDIS_URL; clients are real: the `websockets` library
speaking graphql-transport-ws and an SSE reader that behaves like a browser's EventSource
(it reconnects with Last-Event-ID when asked to). A job's progress comes from a real Celery worker.

- posts written concurrently through either host and either door reach both realtime processes,
  each once, in commit order (the order of event ids; every writer's own posts in its order);
- an SSE stream resumed with Last-Event-ID on the OTHER realtime process gets exactly what it missed;
- a write rolled back at its very commit (a deferred constraint trigger) emits nothing;
- an export's progress, run by a Celery worker, reaches both processes over both protocols;
- Redis restarted: what was written while it was down arrives once it is back, nothing twice.

Streams are known to be live once a marker post reaches every one of them (graphql-transport-ws
does not acknowledge a subscribe), and "nothing more" is proven by a sentinel post: events arrive
in order, so whatever would come before the sentinel has come once the sentinel has.
Skipped when TEST_DATABASE_URL or TEST_REDIS_URL is unset; fails when either is unreachable.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import PASSWORD
from tests.realtime_clients import SSEReader, WebSocketSubscription
from tests.servers import (  # noqa: F401  (fixture)
    ROOT, Gunicorn, Realtime, kill_group, migrate, server_env, services_urls, throwaway_redis, wait_for,
)

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not (os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL")),
                       reason="TEST_DATABASE_URL and TEST_REDIS_URL must both be set"),
]
TIMEOUT = 10
POST = "mutation($input: CreatePostInput!) { createPost(input: $input) { id title } }"
EXPORT = "mutation { requestUserExport(format: csv) { id status } }"


class Stack:
    """Web hosts, realtime processes and (on demand) Celery processes sharing one environment."""

    def __init__(self, home: Path, webs: int, realtimes: int, **env):
        self.home, self.env = home, env
        self.webs = [Gunicorn(home / f"web-{n}", **env) for n in range(webs)]
        self.realtimes = [Realtime(home / f"realtime-{n}", **env) for n in range(realtimes)]
        self.celery: list[subprocess.Popen] = []

    def __enter__(self) -> Stack:
        for server in self.webs + self.realtimes:
            server.start()
        for server in self.webs + self.realtimes:
            server.wait_ready()
        return self

    def __exit__(self, *exc) -> None:
        for process in self.celery:
            kill_group(process, signal.SIGTERM, timeout=10)
        for server in self.realtimes:
            server.stop()
        Gunicorn.stop_all(self.webs)

    def start_celery(self, kind: str) -> subprocess.Popen:
        """A Celery `worker` or `beat` on this stack's broker and queues, once it says it is ready."""
        log = self.home / f"{kind}-{len(self.celery)}.log"
        prefix = self.env["CELERY_QUEUE_PREFIX"]
        args = {"worker": ["-Q", f"{prefix}email,{prefix}heavy", "--pool=solo", "-n", f"{uuid.uuid4().hex[:6]}@%h",
                           "--without-gossip", "--without-mingle", "--without-heartbeat"],
                "beat": ["-s", str(self.home / "beat-schedule")]}[kind]
        process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "tasks.worker", kind, *args,
                                    "--loglevel=INFO", f"--logfile={log}"], cwd=ROOT,
                                   env=server_env(self.home / kind, **self.env), start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.celery.append(process)
        ready = {"worker": "ready.", "beat": "beat: Starting"}[kind]
        wait_for(lambda: log.exists() and ready in log.read_text(), timeout=60, what=f"{kind} start ({log})")
        return process


def environment(db_url: str, redis_url: str) -> dict:
    return {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "CELERY_QUEUE_PREFIX": f"rt-{uuid.uuid4().hex[:8]}-",
            "REALTIME_MAX_CONNECTIONS_PER_USER": 1000, "JOB_BATCH_SIZE": 2, "JOB_BATCH_DELAY": 0.2,
            "EVENTS_RELAY_SECONDS": 1}


def forget(redis_url: str, *patterns: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    for pattern in patterns:
        for key in client.scan_iter(pattern):
            client.delete(key)


@pytest.fixture(scope="module")
def stack(app, tmp_path_factory):
    db_url, redis_url = services_urls()
    home = tmp_path_factory.mktemp("realtime-hosts")
    migrate(db_url, home / "migrate")
    # Cached views and event streams of an earlier run belong to another run's rows.
    forget(redis_url, "delta:cache:*", "delta:events:*")
    env = environment(db_url, redis_url)
    with Stack(home, webs=2, realtimes=2, **env) as running:
        yield running
    forget(redis_url, f"*{env['CELERY_QUEUE_PREFIX']}*")


# --- the writers ---------------------------------------------------------------------------------

def login(web: Gunicorn, user) -> str:
    response = requests.post(f"{web.base}/api/v1/auth/login", json={"email": user.email, "password": PASSWORD},
                             timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def create_post(web: Gunicorn, token: str, title: str, door: str = "rest") -> int:
    """A published post through REST or GraphQL; its id."""
    if door == "rest":
        response = requests.post(f"{web.base}/api/v1/posts", json={"title": title, "published": True},
                                 headers=bearer(token), timeout=TIMEOUT)
        assert response.status_code == 201, response.text
        return response.json()["id"]
    response = requests.post(f"{web.base}/graphql", json={"query": POST, "variables": {
        "input": {"title": title, "published": True}}}, headers=bearer(token), timeout=TIMEOUT)
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    return body["data"]["createPost"]["id"]


def post_streams(stack: Stack) -> dict:
    """An SSE reader and a postPublished subscription on each realtime process."""
    streams = {}
    for n, realtime in enumerate(stack.realtimes):
        streams[f"sse-{n}"] = SSEReader(realtime.base, "posts")
        streams[f"ws-{n}"] = WebSocketSubscription(realtime.ws, "subscription { postPublished { id title } }")
    return streams


def titles(stream) -> list[str]:
    return [item["title"] for item in stream.items()]


def until_live(streams: dict, publish) -> str:
    """Publish markers until one reaches every stream; that marker's title."""
    for _ in range(20):
        marker = f"marker {uuid.uuid4().hex[:8]}"
        publish(marker)
        try:
            wait_for(lambda title=marker: all(title in titles(s) for s in streams.values()), timeout=3,
                     what="a marker")
            return marker
        except AssertionError:
            continue
    raise AssertionError({name: (s.failure, titles(s)) for name, s in streams.items()})


def after(stream, marker: str, sentinel: str) -> list[dict]:
    """The stream's items after `marker`, up to and including `sentinel` (which must have arrived)."""
    wait_for(lambda: sentinel in titles(stream), timeout=30, what=f"{sentinel} on {stream}")
    items = stream.items()
    names = [item["title"] for item in items]
    return items[names.index(marker) + 1:names.index(sentinel) + 1]


def close_all(streams: dict) -> None:
    for stream in streams.values():
        stream.close()


# --- the scenarios -------------------------------------------------------------------------------

WRITERS, EACH = 6, 5


def test_posts_from_either_host_reach_both_realtime_processes_once_in_commit_order(stack, make_user):
    a, b = stack.webs
    author = make_user()
    tokens = [login(a, author), login(b, author)]
    streams = post_streams(stack)
    try:
        marker = until_live(streams, lambda title: create_post(a, tokens[0], title))

        def write(writer: int) -> list[int]:
            # writer w: host w % 2, door by w // 2 % 2; its own posts commit one after the other
            host, door = writer % 2, ("rest", "graphql")[writer // 2 % 2]
            return [create_post((a, b)[host], tokens[host], f"w{writer} #{k}", door) for k in range(EACH)]

        with ThreadPoolExecutor(WRITERS) as pool:
            written = list(pool.map(write, range(WRITERS)))
        sentinel = f"sentinel {uuid.uuid4().hex[:8]}"
        create_post(b, tokens[1], sentinel, "graphql")
        seen = {name: after(stream, marker, sentinel) for name, stream in streams.items()}
    finally:
        close_all(streams)

    sse = seen["sse-0"]
    ids = [event["event_id"] for event in sse]
    assert ids == sorted(ids, key=stack_id) and len(set(ids)) == len(ids)  # event ids: strictly increasing
    assert seen["sse-1"] == sse  # the other process: the same events, same ids, same order
    order = [event["id"] for event in sse]
    expected = sorted(post_id for posts in written for post_id in posts)
    assert sorted(order[:-1]) == expected and len(order) == WRITERS * EACH + 1  # each post once
    for n in (0, 1):
        assert [item["id"] for item in seen[f"ws-{n}"]] == order  # WebSocket: the very same order
    for posts in written:  # a writer's later post committed after its earlier one
        positions = [order.index(post_id) for post_id in posts]
        assert positions == sorted(positions)
    # the event is the REST resource, as the other host serves it
    sample = sse[len(sse) // 2]
    served = requests.get(f"{a.base}/api/v1/posts/{sample['id']}", headers=bearer(tokens[0]), timeout=TIMEOUT)
    assert {k: v for k, v in sample.items() if k not in {"event_id", "event"}} == served.json()
    assert sample["event"] == "post.published"


def stack_id(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


def test_an_sse_stream_resumed_on_the_other_process_gets_exactly_what_it_missed(stack, make_user):
    a, b = stack.webs
    first_rt, other_rt = stack.realtimes
    author = make_user()
    tokens = [login(a, author), login(b, author)]
    watcher = SSEReader(first_rt.base, "posts")  # stays connected throughout: knows when all was relayed
    reader = SSEReader(first_rt.base, "posts")
    resumed = None
    try:
        marker = until_live({"watcher": watcher, "reader": reader}, lambda title: create_post(a, tokens[0], title))
        last_id = reader.items()[-1]["event_id"]
        reader.close()
        missed = [create_post((a, b)[n % 2], tokens[n % 2], f"missed {n}", ("rest", "graphql")[n // 2 % 2])
                  for n in range(6)]
        wait_for(lambda: {"missed 5"} <= set(titles(watcher)), timeout=30, what="the missed posts relayed")

        resumed = SSEReader(other_rt.base, "posts", last_event_id=last_id)
        wait_for(lambda: len(resumed.items()) >= len(missed), timeout=30, what="the replay")
        live = f"live {uuid.uuid4().hex[:8]}"
        live_id = create_post(b, tokens[1], live, "rest")
        for stream in (resumed, watcher):
            wait_for(lambda s=stream: live in titles(s), timeout=30, what=f"the live post on {stream}")
        got = resumed.items()
        watched = [e for e in watcher.items() if e["id"] in missed + [live_id]]
    finally:
        for stream in (watcher, reader, resumed):
            if stream is not None:
                stream.close()
    assert marker not in [e["title"] for e in got]  # nothing from before Last-Event-ID
    assert [e["id"] for e in got] == missed + [live_id]  # the missed posts, then the live one, once each
    assert got == watched  # the same ids and data as the stream that never left


def test_a_write_rolled_back_at_its_commit_emits_nothing(stack, make_user, query_db):
    from webapp.posts.models import Post

    a, b = stack.webs
    author = make_user()
    tokens = [login(a, author), login(b, author)]
    engine = create_engine(os.environ["TEST_DATABASE_URL"])
    # Fails at COMMIT, after the post and its event row were inserted in the same transaction.
    with engine.begin() as connection:
        connection.execute(text(
            "CREATE OR REPLACE FUNCTION realtime_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.title LIKE 'ROLLBACK%' THEN RAISE EXCEPTION 'refused at commit by the test'; END IF; "
            "RETURN NULL; END $$"))
        connection.execute(text(
            "CREATE CONSTRAINT TRIGGER realtime_test_refuse AFTER INSERT ON posts DEFERRABLE INITIALLY DEFERRED "
            "FOR EACH ROW EXECUTE FUNCTION realtime_test_refuse()"))
    streams = post_streams(stack)
    try:
        marker = until_live(streams, lambda title: create_post(a, tokens[0], title))
        rest = requests.post(f"{a.base}/api/v1/posts", json={"title": "ROLLBACK rest", "published": True},
                             headers=bearer(tokens[0]), timeout=TIMEOUT)
        graphql = requests.post(f"{b.base}/graphql", json={"query": POST, "variables": {
            "input": {"title": "ROLLBACK graphql", "published": True}}}, headers=bearer(tokens[1]), timeout=TIMEOUT)
        sentinel = f"sentinel {uuid.uuid4().hex[:8]}"
        create_post(b, tokens[1], sentinel)
        seen = {name: [item["title"] for item in after(stream, marker, sentinel)] for name, stream in streams.items()}
    finally:
        close_all(streams)
        with engine.begin() as connection:
            connection.execute(text("DROP TRIGGER IF EXISTS realtime_test_refuse ON posts"))
            connection.execute(text("DROP FUNCTION IF EXISTS realtime_test_refuse()"))
        engine.dispose()
    assert rest.status_code == 500 and rest.json()["code"] == 500, rest.text
    assert graphql.json()["errors"] and not graphql.json().get("data"), graphql.text
    assert seen == {name: [sentinel] for name in streams}
    assert query_db(lambda s: s.query(Post).filter(Post.title.like("ROLLBACK%")).count()) == 0


def test_an_exports_progress_run_by_a_celery_worker_reaches_both_processes(stack, make_user):
    a, b = stack.webs
    admin = make_user(role="admin")
    for _ in range(9):
        make_user()
    tokens = [login(a, admin), login(b, admin)]
    # one job through each door and host; no worker runs yet, so every stream sees it from "queued"
    rest = requests.post(f"{a.base}/api/v1/jobs/user-export", json={"format": "csv"}, headers=bearer(tokens[0]),
                         timeout=TIMEOUT)
    assert rest.status_code == 202, rest.text
    graphql = requests.post(f"{b.base}/graphql", json={"query": EXPORT}, headers=bearer(tokens[1]), timeout=TIMEOUT)
    jobs = [rest.json()["id"], graphql.json()["data"]["requestUserExport"]["id"]]
    streams = {}
    try:
        for job in jobs:
            for n, realtime in enumerate(stack.realtimes):
                streams[job, f"sse-{n}"] = SSEReader(realtime.base, f"jobs/{job}", token=tokens[n])
                streams[job, f"ws-{n}"] = WebSocketSubscription(
                    realtime.ws, "subscription($id: Int!) { jobProgress(id: $id) { id status progress } }",
                    {"id": job}, token=tokens[1 - n])
        wait_for(lambda: all(s.items() for s in streams.values()), timeout=30, what="each job's current state")
        stack.start_celery("worker")
        try:
            wait_for(lambda: all(s.ended for s in streams.values()), timeout=90, what="every stream to end")
        except AssertionError as exc:
            states = [(name, s.ended, s.failure, s.items()) for name, s in streams.items()]
            raise AssertionError(f"{exc}: {states}") from None
    finally:
        close_all(streams)
    for job in jobs:
        sequences = {name: [(item["status"], item["progress"]) for item in stream.items()]
                     for (of, name), stream in streams.items() if of == job}
        first = sequences["sse-0"]
        assert all(sequence == first for sequence in sequences.values()), sequences
        assert first[0] == ("queued", 0) and first[-1] == ("succeeded", 100), first
        assert any(status == "running" and 0 < progress < 100 for status, progress in first), first
        progress = [p for _, p in first]
        assert progress == sorted(progress)
        assert all(not stream.failure for (of, _), stream in streams.items() if of == job)
        sse_ids = [item["event_id"] for item in streams[job, "sse-0"].items()[1:]]
        assert sse_ids == [item["event_id"] for item in streams[job, "sse-1"].items()[1:]]


def test_redis_restarted_streams_resume_and_what_was_written_meanwhile_arrives_once(
        throwaway_redis, app, make_user, tmp_path):
    db_url, _ = services_urls()
    env = {**environment(db_url, throwaway_redis.url), "RATELIMIT_ENABLED": "false"}
    with Stack(tmp_path / "restart", webs=1, realtimes=2, **env) as running:
        running.start_celery("worker")
        running.start_celery("beat")  # beat's relay hands over what commits could not
        (web,) = running.webs
        author = make_user()
        token = login(web, author)
        first, second = running.realtimes
        streams = {"sse-0": SSEReader(first.base, "posts", reconnect=True),
                   "ws-1": WebSocketSubscription(second.ws, "subscription { postPublished { id title } }"),
                   "sse-1": SSEReader(second.base, "posts", reconnect=True)}
        try:
            marker = until_live(streams, lambda title: create_post(web, token, title))
            before = [create_post(web, token, f"before {n}") for n in range(3)]
            wait_for(lambda: all("before 2" in titles(s) for s in streams.values()), timeout=30, what="before")

            kill_group(throwaway_redis.process, signal.SIGTERM)  # a clean restart: the AOF is complete
            during = [create_post(web, token, f"during {n}") for n in range(4)]  # the API keeps answering
            throwaway_redis.start()
            wait_for(lambda: all("during 3" in titles(s) for s in streams.values()), timeout=90, interval=0.5,
                     what="the posts written while Redis was down")
            sentinel = f"sentinel {uuid.uuid4().hex[:8]}"
            sentinel_id = create_post(web, token, sentinel)
            seen = {name: after(stream, marker, sentinel) for name, stream in streams.items()}
        finally:
            close_all(streams)
    for name, items in seen.items():
        assert [item["id"] for item in items] == before + during + [sentinel_id], (name, items)
    ids = [item["event_id"] for item in seen["sse-0"]]
    assert ids == [item["event_id"] for item in seen["sse-1"]] and ids == sorted(ids, key=stack_id)
