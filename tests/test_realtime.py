"""The realtime process (PRODUCT.md "Realtime") with real clients against a real uvicorn.

Writes go through both doors of an in-process app (tests/doors.py) on the test database; a
`uvicorn webapp.realtime.asgi:app` process on the same database (and, in services mode, the
same Redis: TEST_DATABASE_URL + TEST_REDIS_URL) streams them: the `websockets` library speaking
graphql-transport-ws by hand, gql's WebsocketsTransport, and an SSE reader (httpx). Jobs stay
queued (their broker is a closed port) until a test runs them in-process as a worker would.
"""
from __future__ import annotations

import asyncio
import json
import os

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from conf import settings
from tests.doors import DOORS
from tests.servers import SECRET, services_urls, start_realtime  # noqa: F401  (a fixture)

WAIT = 15  # seconds: a bound on waiting for what must come, never a measured expectation
PROTOCOL = "graphql-transport-ws"
POST_FIELDS = "id title content published createdAt updatedAt author { id name }"


# --- the stack: an in-process writer app and a realtime process over the same store ----------

@pytest.fixture(scope="module")
def writer(app):
    """The app clients write through: the test database, Redis events in services mode, no broker."""
    from webapp import create_app

    redis_url = ""
    if os.environ.get("TEST_DATABASE_URL") or os.environ.get("TEST_REDIS_URL"):
        redis_url = services_urls()[1]
    config = settings.TestingConfig().override(
        INSTANCE_PATH=app.config["INSTANCE_PATH"], MEDIA_ROOT=app.config["MEDIA_ROOT"],
        DATABASE_URL=app.config["DATABASE_URL"], REDIS_URL=redis_url, SECRET_KEY=SECRET, JWT_SECRET_KEY=SECRET,
        CELERY_BROKER_URL="redis://127.0.0.1:1/0")  # jobs stay queued until a test runs them
    return create_app(config)


@pytest.fixture
def realtime(writer, start_realtime):
    """`start(**settings)` → a realtime process reading what `writer` publishes (Redis emptied first)."""
    def start(**settings):
        if writer.config["REDIS_URL"]:
            from redis import Redis

            Redis.from_url(writer.config["REDIS_URL"]).flushdb()
        return start_realtime(DATABASE_URL=writer.config["DATABASE_URL"], REDIS_URL=writer.config["REDIS_URL"],
                              **settings)

    return start


@pytest.fixture(params=sorted(DOORS))
def door(request, writer):
    return DOORS[request.param](writer.test_client())


@pytest.fixture
def rest(writer):
    return DOORS["rest"](writer.test_client())


@pytest.fixture
def signed_in(make_user, rest):
    """`signed_in(role="user")` → (user record, access token)."""
    def sign_in(role="user"):
        user = make_user(role=role)
        outcome = rest.login(user.email, user.password)
        assert outcome.ok, outcome
        return user, outcome.data["access_token"]

    return sign_in


# --- clients ----------------------------------------------------------------------------------

class Socket:
    """graphql-transport-ws spoken by hand over the `websockets` library."""

    def __init__(self, connection):
        self.connection = connection

    @classmethod
    async def open(cls, url: str, token: str | None = None, *, ack: bool = True) -> Socket:
        socket = cls(await websockets.connect(url, subprotocols=[PROTOCOL]))
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await socket.send({"type": "connection_init", "payload": payload})
        if ack:
            assert (await socket.receive())["type"] == "connection_ack"
        return socket

    async def send(self, message: dict) -> None:
        await self.connection.send(json.dumps(message))

    async def subscribe(self, op_id: str, query: str, variables: dict | None = None) -> None:
        await self.send({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})

    async def receive(self) -> dict:
        """The next message that is not a server ping (pings are answered)."""
        while True:
            message = json.loads(await asyncio.wait_for(self.connection.recv(), WAIT))
            if message["type"] != "ping":
                return message
            await self.send({"type": "pong"})

    async def close_code(self) -> tuple[int, str]:
        """Wait for the server to close the socket: (code, reason)."""
        try:
            while True:
                await self.receive()
        except ConnectionClosed as closed:
            return closed.rcvd.code, closed.rcvd.reason

    async def close(self) -> None:
        await self.connection.close()


class EventStream:
    """An SSE reader: `open` returns once the server says the stream is live (its `: open` comment)."""

    def __init__(self, client, response):
        self.client, self.response = client, response
        self.lines = response.aiter_lines()

    @classmethod
    async def open(cls, base: str, topic: str, token: str | None = None, last_id: str | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if last_id:
            headers["Last-Event-ID"] = last_id
        client = httpx.AsyncClient(timeout=httpx.Timeout(WAIT, read=None))
        response = await client.send(client.build_request("GET", f"{base}/api/v1/events", params={"topic": topic},
                                                          headers=headers), stream=True)
        stream = cls(client, response)
        if response.status_code == 200:
            assert await stream.comment() == "open"
        return stream

    async def _line(self) -> str | None:
        try:
            return await asyncio.wait_for(self.lines.__anext__(), WAIT)
        except (StopAsyncIteration, httpx.RemoteProtocolError):
            return None

    async def comment(self) -> str | None:
        line = await self._line()
        assert line is not None and line.startswith(":"), line
        assert await self._line() == ""
        return line[1:].strip()

    async def next(self) -> dict | None:
        """The next event ({id?, event, data}), skipping comments; None when the server ended the stream."""
        fields: dict = {}
        while True:
            line = await self._line()
            if line is None:
                return None
            if line == "":
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = json.loads(value) if name == "data" else value

    async def close(self) -> None:
        await self.response.aclose()
        await self.client.aclose()


async def until_live(socket: Socket, op_id: str, publish) -> None:
    """Publish probe posts until one arrives on `op_id`: from then on the subscription is live
    (the socket's other operations' messages are skipped; the document may alias its fields)."""
    for attempt in range(20):
        title = f"probe {op_id} {attempt}"
        publish(title)
        try:
            while True:
                message = await asyncio.wait_for(socket.receive(), 1.0)
                if message["id"] == op_id and title in str(message["payload"]):
                    return
        except TimeoutError:
            continue
    raise AssertionError("the subscription never went live")


def post_published(message: dict) -> dict:
    assert message["type"] == "next", message
    return message["payload"]["data"]["postPublished"]


# --- /api/v1/meta and the Flask /graphql -------------------------------------------------------

def test_meta_tells_where_the_realtime_process_is(client, app, monkeypatch):
    body = client.get("/api/v1/meta").get_json()
    assert body == {"api_version": "v1", "streaming_url": f"http://localhost:{app.config['REALTIME_PORT']}"}
    monkeypatch.setitem(app.config, "REALTIME_PUBLIC_URL", "https://delta.example/")
    assert client.get("/api/v1/meta").get_json()["streaming_url"] == "https://delta.example"
    assert "/api/v1/meta" in client.get("/openapi.json").get_json()["paths"]


def test_a_subscription_sent_to_the_api_graphql_is_refused_with_where_to_send_it(client):
    response = client.post("/graphql", json={"query": "subscription { postPublished { id } }"})
    assert response.status_code == 400
    error = response.get_json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "ws://localhost:8001/graphql" in error["message"]


# --- posts ---------------------------------------------------------------------------------------

def test_a_published_post_arrives_on_both_protocols_once_and_a_draft_never(realtime, door, signed_in, rest):
    server = realtime()
    author, token = signed_in()

    def publish(title, published=True):
        outcome = door.create_post(token, title=title, content="body", published=published)
        assert outcome.ok, outcome
        return outcome.data["id"]

    async def scenario():
        socket = await Socket.open(server.ws)
        await socket.subscribe("1", f"subscription {{ postPublished {{ {POST_FIELDS} }} }}")
        await until_live(socket, "1", publish)
        stream = await EventStream.open(server.base, "posts")
        draft = publish("a draft", published=False)
        post = publish("hello world")
        shown = rest.get_post(None, post).data

        event = await stream.next()
        assert (event["event"], event["data"]) == ("post.published", shown)  # the REST shape, no draft before it
        assert event["id"]
        received = post_published(await socket.receive())
        assert received == {"id": post, "title": "hello world", "content": "body", "published": True,
                            "createdAt": received["createdAt"], "updatedAt": received["updatedAt"],
                            "author": {"id": author.id, "name": author.name}}

        assert door.update_post(token, draft, published=True).ok  # a draft published: once
        assert door.update_post(token, post, title="edited").ok     # an edit of a public post: nothing
        marker = publish("marker")
        assert [(await stream.next())["data"]["id"] for _ in range(2)] == [draft, marker]
        assert [post_published(await socket.receive())["id"] for _ in range(2)] == [draft, marker]
        await socket.close()
        await stream.close()

    asyncio.run(scenario())


def test_post_published_filters_by_author(realtime, signed_in, rest):
    server = realtime()
    (_, mine), (other, theirs) = signed_in(), signed_in()

    async def scenario():
        socket = await Socket.open(server.ws)
        await socket.subscribe("1", "subscription($a: Int) { postPublished(authorId: $a) { id title } }",
                               {"a": other.id})
        await until_live(socket, "1", lambda title: rest.create_post(theirs, title=title, published=True))
        rest.create_post(mine, title="not theirs", published=True)
        post = rest.create_post(theirs, title="theirs", published=True).data["id"]
        assert post_published(await socket.receive()) == {"id": post, "title": "theirs"}
        await socket.close()

    asyncio.run(scenario())


def test_gql_client_receives_published_posts(realtime, signed_in, rest):
    from gql import Client, gql
    from gql.transport.websockets import WebsocketsTransport

    server = realtime()
    _, token = signed_in()

    async def scenario():
        transport = WebsocketsTransport(url=server.ws, init_payload={"Authorization": f"Bearer {token}"})
        async with Client(transport=transport) as session:
            titles = session.subscribe(gql("subscription { postPublished { title author { name } } }"))
            first = asyncio.create_task(anext(titles))
            for attempt in range(20):  # until the subscription is live
                rest.create_post(token, title=f"gql {attempt}", published=True)
                done, _ = await asyncio.wait({first}, timeout=1.0)
                if done:
                    break
            assert first.result()["postPublished"]["title"].startswith("gql ")
            await titles.aclose()

    asyncio.run(scenario())


def test_a_resumed_event_stream_gets_exactly_what_it_missed_then_live_ones(realtime, signed_in, rest):
    server = realtime()
    _, token = signed_in()

    def publish(title):
        return rest.create_post(token, title=title, published=True).data["id"]

    async def scenario():
        stream = await EventStream.open(server.base, "posts")
        first = publish("seen")
        event = await stream.next()
        assert event["data"]["id"] == first
        await stream.close()
        missed = [publish("missed 1"), publish("missed 2")]
        resumed = await EventStream.open(server.base, "posts", last_id=event["id"])
        assert [(await resumed.next())["data"]["id"] for _ in range(2)] == missed
        live = publish("live")
        assert (await resumed.next())["data"]["id"] == live
        await resumed.close()
        for bad in ("nope", "-1"):
            refused = await EventStream.open(server.base, "posts", last_id=bad)
            assert refused.response.status_code == 422
            assert (await refused.response.aread()) and json.loads(await refused.response.aread())["code"] == 422
            await refused.close()

    asyncio.run(scenario())


# --- jobs ----------------------------------------------------------------------------------------

JOB_SUBSCRIPTION = "subscription($id: Int!) { jobProgress(id: $id) { id status progress } }"


def queued_job(writer, token) -> int:
    response = writer.test_client().post("/api/v1/users/me/export", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def run_job(writer, job_id: int) -> None:
    """What a worker does with the queued job."""
    from webapp.extensions import db
    from webapp.jobs.runner import run_job as run

    with writer.app_context():
        try:
            run(db.session, job_id)
        finally:
            db.session.remove()


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_job_progress_gives_the_state_then_each_change_then_completes(realtime, writer, signed_in, who):
    server = realtime()
    _, owner_token = signed_in()
    token = owner_token if who == "owner" else signed_in(role="admin")[1]
    job = queued_job(writer, owner_token)

    async def scenario():
        socket = await Socket.open(server.ws, token)
        await socket.subscribe("job", JOB_SUBSCRIPTION, {"id": job})
        stream = await EventStream.open(server.base, f"jobs/{job}", token)
        first = await socket.receive()
        assert first["payload"]["data"]["jobProgress"] == {"id": job, "status": "queued", "progress": 0}
        current = await stream.next()
        # the current state is the job's newest event, with its id (a resume continues from it)
        assert current["id"] and (current["event"], current["data"]["status"]) == ("job.progress", "queued")

        await asyncio.to_thread(run_job, writer, job)
        over_ws, over_sse = [], []
        while (message := await socket.receive())["type"] == "next":
            over_ws.append(message["payload"]["data"]["jobProgress"])
        assert message == {"id": "job", "type": "complete"}
        while (event := await stream.next()) is not None:  # the server ends the stream after the last state
            over_sse.append(event["data"])
        for states in (over_ws, [{"id": e["id"], "status": e["status"], "progress": e["progress"]} for e in over_sse]):
            assert states[0]["status"] == "running" and states[-1]["status"] == "succeeded"
            assert [s["progress"] for s in states] == sorted(s["progress"] for s in states)
        assert over_sse[-1] == writer.test_client().get(
            f"/api/v1/jobs/{job}", headers={"Authorization": f"Bearer {owner_token}"}).get_json()
        await socket.close()

        again = await Socket.open(server.ws, token)  # already finished: its state, then complete at once
        await again.subscribe("job", JOB_SUBSCRIPTION, {"id": job})
        assert (await again.receive())["payload"]["data"]["jobProgress"]["status"] == "succeeded"
        assert await again.receive() == {"id": "job", "type": "complete"}
        await again.close()

    asyncio.run(scenario())


def test_someone_elses_job_is_not_found_and_an_anonymous_one_unauthenticated(realtime, writer, signed_in):
    server = realtime()
    _, owner_token = signed_in()
    _, stranger = signed_in()
    job = queued_job(writer, owner_token)

    async def scenario():
        for token, code, status in ((stranger, "NOT_FOUND", 404), (None, "UNAUTHENTICATED", 401)):
            socket = await Socket.open(server.ws, token)
            await socket.subscribe("job", JOB_SUBSCRIPTION, {"id": job})
            message = await socket.receive()
            assert message["type"] == "error" or message["payload"].get("errors"), message
            errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
            assert errors[0]["extensions"]["code"] == code
            await socket.close()
            stream = await EventStream.open(server.base, f"jobs/{job}", token)
            assert stream.response.status_code == status
            body = json.loads(await stream.response.aread())
            assert (body["code"], body["status"]) == (status, "Not Found" if status == 404 else "Unauthorized")
            await stream.close()
        bad = await EventStream.open(server.base, "jobs/abc", owner_token)
        assert bad.response.status_code == 422
        assert json.loads(await bad.response.aread())["errors"] == {"topic": ["Must be `posts` or `jobs/{id}`."]}
        await bad.close()

    asyncio.run(scenario())


# --- sessions, tokens and limits -------------------------------------------------------------------

def test_logout_closes_the_sessions_sockets_with_4401_and_ends_its_streams(realtime, door, make_user):
    server = realtime()
    user = make_user()
    token = door.login(user.email, user.password).data["access_token"]
    other = door.login(user.email, user.password).data["access_token"]  # another session: stays open

    async def scenario():
        socket = await Socket.open(server.ws, token)
        await socket.subscribe("1", "subscription { postPublished { id } }")
        stays = await Socket.open(server.ws, other)
        stream = await EventStream.open(server.base, "posts", token)
        assert door.logout(token).ok
        assert (await socket.close_code())[0] == 4401
        assert await stream.next() is None
        await stays.send({"type": "ping"})
        assert (await stays.receive())["type"] == "pong"
        await stays.close()
        await stream.close()

    asyncio.run(scenario())


def test_revoking_a_personal_access_token_closes_its_sockets_and_ends_its_streams(realtime, writer, signed_in):
    server = realtime()
    _, session_token = signed_in()
    client, auth = writer.test_client(), {"Authorization": f"Bearer {session_token}"}

    def new_pat():
        created = client.post("/api/v1/users/me/tokens", headers=auth,
                              json={"name": "feed", "scopes": ["read"], "expires_in_days": 1})
        assert created.status_code == 201, created.get_json()
        return created.get_json()

    pat, kept = new_pat(), new_pat()

    async def scenario():
        socket = await Socket.open(server.ws, pat["token"])
        await socket.subscribe("1", "subscription { postPublished { id } }")
        stream = await EventStream.open(server.base, "posts", pat["token"])
        stays = await Socket.open(server.ws, kept["token"])  # another token of the same user stays open
        assert client.delete(f"/api/v1/users/me/tokens/{pat['id']}", headers=auth).status_code == 204
        assert (await socket.close_code())[0] == 4401
        assert await stream.next() is None
        await stays.send({"type": "ping"})
        assert (await stays.receive())["type"] == "pong"
        await stays.close()
        await stream.close()

    asyncio.run(scenario())


def test_a_token_that_expires_closes_its_socket_with_4401_and_ends_its_stream(realtime, writer, signed_in):
    from datetime import timedelta

    from flask_jwt_extended import create_access_token, decode_token

    server = realtime()
    user, token = signed_in()
    with writer.app_context():  # the same session, its access token expiring in two seconds
        sid = decode_token(token)["sid"]
        short = create_access_token(str(user.id), additional_claims={"sid": sid}, expires_delta=timedelta(seconds=2))

    async def scenario():
        socket = await Socket.open(server.ws, short)
        await socket.subscribe("1", "subscription { postPublished { id } }")
        stream = await EventStream.open(server.base, "posts", short)
        assert await socket.close_code() == (4401, "Token has expired.")
        assert await stream.next() is None
        await stream.close()

    asyncio.run(scenario())


def test_a_refused_token_closes_with_4401_and_is_a_401_on_the_event_stream(realtime):
    server = realtime()

    async def scenario():
        socket = await Socket.open(server.ws, "not-a-token", ack=False)
        assert (await socket.close_code())[0] == 4401
        stream = await EventStream.open(server.base, "posts", "not-a-token")
        assert stream.response.status_code == 401
        assert stream.response.headers["WWW-Authenticate"] == "Bearer"
        assert json.loads(await stream.response.aread())["code"] == 401
        await stream.close()

    asyncio.run(scenario())


def test_connections_per_user_are_limited(realtime, signed_in):
    server = realtime(REALTIME_MAX_CONNECTIONS_PER_USER=2)
    _, token = signed_in()

    async def scenario():
        held = [await Socket.open(server.ws, token), await EventStream.open(server.base, "posts", token)]
        extra = await Socket.open(server.ws, token, ack=False)
        assert (await extra.close_code())[0] == 4429
        refused = await EventStream.open(server.base, "posts", token)
        assert refused.response.status_code == 429 and refused.response.headers["Retry-After"]
        assert json.loads(await refused.response.aread())["code"] == 429
        await refused.close()
        anonymous = [await Socket.open(server.ws), await Socket.open(server.ws)]  # counted per IP, apart
        over = await Socket.open(server.ws, ack=False)
        assert (await over.close_code())[0] == 4429
        await held[0].close()  # a closed connection frees its place
        again = await EventStream.open(server.base, "posts", token)
        assert again.response.status_code == 200
        for item in (*anonymous, held[1], again):
            await item.close()

    asyncio.run(scenario())


def test_subscriptions_per_socket_are_limited(realtime):
    server = realtime(REALTIME_MAX_SUBSCRIPTIONS=2)

    async def scenario():
        socket = await Socket.open(server.ws)
        for op_id in ("1", "2", "3"):
            await socket.subscribe(op_id, "subscription { postPublished { id } }")
        message = await socket.receive()
        assert (message["id"], message["type"]) == ("3", "error")
        assert "limit" in message["payload"][0]["message"].lower()
        await socket.close()

    asyncio.run(scenario())


def test_an_idle_socket_is_closed_and_the_server_pings(realtime):
    server = realtime(REALTIME_IDLE_SECONDS=1, REALTIME_HEARTBEAT_SECONDS=0.2)

    async def scenario():
        socket = await Socket.open(server.ws)
        ping = json.loads(await asyncio.wait_for(socket.connection.recv(), WAIT))
        assert ping == {"type": "ping"}
        assert await socket.close_code() == (1000, "Idle")

    asyncio.run(scenario())


def test_cors_origins_decide_which_pages_may_connect(realtime):
    server = realtime(CORS_ORIGINS="https://app.example")

    async def scenario():
        async with httpx.AsyncClient() as client:
            async with client.stream("GET", f"{server.base}/api/v1/events", params={"topic": "posts"},
                                     headers={"Origin": "https://app.example"}) as response:
                headers = response.headers
                assert headers["Access-Control-Allow-Origin"] == "https://app.example"
                assert "Origin" in headers["Vary"]
                assert (headers["Content-Type"].split(";")[0], headers["Cache-Control"]) == \
                       ("text/event-stream", "no-store")
                assert headers["X-Content-Type-Options"] == "nosniff"
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(server.ws, subprotocols=[PROTOCOL], origin="https://evil.example")
        assert refused.value.response.status_code == 403
        allowed = Socket(await websockets.connect(server.ws, subprotocols=[PROTOCOL], origin="https://app.example"))
        await allowed.send({"type": "connection_init", "payload": {}})
        assert (await allowed.receive())["type"] == "connection_ack"
        await allowed.close()

    asyncio.run(scenario())


def test_metrics_count_connections_and_events(realtime, signed_in, rest):
    server = realtime()
    _, token = signed_in()

    async def scenario():
        stream = await EventStream.open(server.base, "posts")
        rest.create_post(token, title="counted", published=True)
        assert (await stream.next())["data"]["title"] == "counted"
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{server.base}/metrics")).text
        assert 'delta_realtime_connections{protocol="sse"} 1.0' in text
        assert 'delta_realtime_events_delivered_total{protocol="sse",type="post.published"} 1.0' in text
        assert 'delta_realtime_delivery_lag_seconds_count{protocol="sse"} 1.0' in text
        await stream.close()

    asyncio.run(scenario())


# --- a shared public event fans out from the feed's reader (webapp/realtime/outbox.py) ------------
# Many sockets and streams on the same public subscription get every post once, in commit order,
# each shaped by its own document (selection, aliases, its own operation id); several operations
# on one socket stay apart; an operation the client completes gets nothing more; no draft.

def test_many_subscribers_of_a_public_post_each_get_every_post_once_in_order(realtime, signed_in, rest):
    server = realtime()
    _, token = signed_in()

    def publish(title, published=True):
        return rest.create_post(token, title=title, published=published).data["id"]

    plain = "subscription { postPublished { id title } }"
    aliased = "subscription { p: postPublished { title n: id } }"

    async def scenario():
        sockets = [await Socket.open(server.ws) for _ in range(4)]
        for socket in sockets:
            await socket.subscribe("a", plain)
            await until_live(socket, "a", publish)
        await sockets[0].subscribe("b", aliased)  # a second operation, another document, same socket
        await until_live(sockets[0], "b", publish)
        streams = [await EventStream.open(server.base, "posts") for _ in range(3)]
        await drain(sockets)

        titles = [f"fan {n}" for n in range(6)]
        ids = []
        for n, title in enumerate(titles):
            ids.append(publish(title))
            if n == 2:
                publish("a draft", published=False)
        expected_plain = [{"id": post, "title": title} for post, title in zip(ids, titles, strict=True)]

        for socket in sockets[1:]:
            assert [post_published(await socket.receive()) for _ in ids] == expected_plain
        by_op = {"a": [], "b": []}
        for _ in range(2 * len(ids)):
            message = await sockets[0].receive()
            assert message["type"] == "next", message
            by_op[message["id"]].append(message["payload"]["data"])
        assert by_op["a"] == [{"postPublished": item} for item in expected_plain]
        assert by_op["b"] == [{"p": {"title": title, "n": post}} for post, title in zip(ids, titles, strict=True)]
        for stream in streams:
            events = [await stream.next() for _ in ids]
            assert [(event["event"], event["data"]["id"]) for event in events] == [
                ("post.published", post) for post in ids]
            assert len({event["id"] for event in events}) == len(ids)

        await sockets[0].send({"id": "b", "type": "complete"})  # the client ends one operation
        after = publish("after complete")
        message = await sockets[0].receive()
        assert (message["id"], post_published(message)) == ("a", {"id": after, "title": "after complete"})
        assert post_published(await sockets[1].receive()) == {"id": after, "title": "after complete"}
        marker = publish("marker")
        message = await sockets[0].receive()  # nothing for "b" in between
        assert (message["id"], post_published(message)["id"]) == ("a", marker)
        for socket in sockets:
            await socket.close()
        for stream in streams:
            await stream.close()

    asyncio.run(scenario())


async def drain(sockets: list[Socket]) -> None:
    """Read the probes' leftovers until every socket is quiet for a moment."""
    for socket in sockets:
        try:
            while True:
                await asyncio.wait_for(socket.receive(), 0.5)
        except TimeoutError:
            pass
