"""`/graphql` over WebSocket (graphql-transport-ws): strawberry's ASGI view with Delta's rules.

- The token comes in connection_init's payload (`{"Authorization": "Bearer …"}`), checked as
  every HTTP request is (webapp/realtime/auth.py). A refused token closes the socket with 4401
  (graphql-transport-ws's "Unauthorized"); without a token only public subscriptions run
  (a resolver that needs a user answers an `error` message with UNAUTHENTICATED).
- Connections per user (per IP when anonymous) are counted at connection_init: one too many
  is closed with 4429. More than REALTIME_MAX_SUBSCRIPTIONS operations on one socket: an
  `error` message for the extra subscribe (strawberry's own limit).
- Logout, session revocation and token expiry close the socket with 4401 (connections.py).
- The server pings every REALTIME_HEARTBEAT_SECONDS, and closes a socket that has run no
  subscription for REALTIME_IDLE_SECONDS with 1000 ("Idle").
"""
from __future__ import annotations

import asyncio
import json
import time
from contextlib import aclosing
from copy import copy
from dataclasses import dataclass
from datetime import timedelta

from starlette.responses import JSONResponse
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.types.unset import UNSET

from webapp.compat.strawberry import SharedResults
from webapp.errors import Unauthenticated, Unavailable, envelope
from webapp.events.feed import SlowSubscriber
from webapp.graphql.context import Context
from webapp.graphql.errors import shape
from webapp.graphql.loaders import Loaders
from webapp.realtime import auth, metrics
from webapp.realtime.connections import UNAUTHORIZED, Connection

PROTOCOL = "websocket"
TOO_MANY = 4429
TRY_AGAIN = 1013  # RFC 6455 "Try Again Later": the database is down
IDLE = 1000
_encoded: dict[int, tuple[dict, str]] = {}  # the latest results' payloads, kept with their result


class Refused(Exception):
    """Close the socket with this code instead of acknowledging connection_init."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass
class RealtimeContext(Context):
    """The GraphQL context of one socket: its viewer, and the process's feed and services."""

    state: object = None
    connection_params: dict | None = None
    connection: Connection | None = None

    authors: object = None  # the Loaders of the post being sent

    @property
    def loaders(self):
        """Authors loaded (`prime_authors`) before a post is resolved: resolvers run on the event loop."""
        if self.authors is None:
            self.authors = Loaders(None, self.viewer)
        return self.authors

    def events(self, topic: str, after: str | None = None):
        """Live events of `topic` from the process's one feed reader (those after `after` first)."""
        return _Counted(self.state.feed.subscribe(topic, after=after))

    async def newest(self, topic: str):
        """The topic's last retained event (a job's current state), or None."""
        return await self.state.feed.newest(topic)

    async def call(self, fn, *args):
        """`fn(session, viewer, *args)` in a worker thread inside the Flask app context."""
        return await auth.call(self.state.flask, fn, self.viewer, *args)

    async def prime_authors(self, author_ids) -> None:
        """Load the authors of the post about to be sent, fresh (names change; a socket lives long)."""
        self.authors = await auth.call(self.state.flask, _authors, self.viewer, set(author_ids))


def _authors(session, viewer, ids) -> Loaders:
    """Loaders holding `ids`' users, loaded as the API's loaders load them, usable once the session is gone."""
    loaders = Loaders(session, viewer)
    for user_id in ids:
        loaders.user(user_id)
    loaders.session = None
    return loaders


class _Counted:
    """A feed subscription that counts the events it hands to a subscription resolver (before the
    resolver's own filter, such as postPublished's authorId), with their lag from the commit."""

    def __init__(self, live):
        self.live = live

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            event = await self.live.__anext__()
        except SlowSubscriber:
            raise Unavailable("This subscription fell too far behind the events; subscribe again.") from None
        metrics.delivered(PROTOCOL, event)
        return event

    async def ready(self) -> None:
        await self.live.ready()

    async def aclose(self) -> None:
        await self.live.aclose()


class Handler(BaseGraphQLTransportWSHandler):
    """graphql-transport-ws with Delta's refusals, limits, heartbeat and idle timeout."""

    watcher: asyncio.Task | None = None

    async def handle_connection_init(self, message) -> None:
        try:
            await super().handle_connection_init(message)
        except Refused as refused:
            metrics.REFUSED.labels(PROTOCOL, str(refused.code)).inc()
            await self.websocket.close(code=refused.code, reason=refused.reason)

    def on_request_accepted(self) -> None:
        super().on_request_accepted()
        self.watcher = asyncio.create_task(self.watch())

    async def watch(self) -> None:
        config = self.context.state.flask.config
        idle, heartbeat = config["REALTIME_IDLE_SECONDS"], config["REALTIME_HEARTBEAT_SECONDS"]
        tick = max(0.05, min(idle / 4, heartbeat, 5.0))
        idle_since, pinged = time.monotonic(), time.monotonic()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if self.operations:
                idle_since = now
            elif now - idle_since >= idle:
                metrics.CLOSED.labels(PROTOCOL, "idle").inc()
                await self.websocket.close(code=IDLE, reason="Idle")
                return
            if self.connection_acknowledged and now - pinged >= heartbeat:
                pinged = now
                await self.send_message({"type": "ping"})

    async def shutdown(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
        if self.context.connection is not None:
            self.context.state.registry.release(self.context.connection)
        await super().shutdown()


class CodedErrors:
    """The schema, its streamed results' errors given `extensions.code` like every GraphQL answer.

    The schema's ErrorCodes extension shapes a query's one result when the operation ends; a
    subscription's results leave one by one, so each is shaped here (webapp/graphql/errors.py).
    """

    def __init__(self, schema):
        self.schema = schema

    def __getattr__(self, name):
        return getattr(self.schema, name)

    async def stream(self, *args, **kwargs):
        return self._shaped(await self.schema.stream(*args, **kwargs))

    async def _shaped(self, results):
        async with aclosing(results):
            async for result in results:
                if getattr(result, "errors", None):
                    result.errors = [error if error.extensions and "code" in error.extensions
                                     else shape(error, self.schema.production) for error in result.errors]
                yield result


class RealtimeGraphQL(GraphQL):
    graphql_transport_ws_handler_class = Handler

    def __init__(self, schema, state):
        config = state.flask.config
        shared = copy(schema)  # the API's schema, executing a public event once for all its subscribers
        shared.execution_context_class = SharedResults
        super().__init__(CodedErrors(shared), graphql_ide=None, subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
                         connection_init_wait_timeout=timedelta(seconds=10),
                         max_subscriptions_per_connection=config["REALTIME_MAX_SUBSCRIPTIONS"],
                         allowed_origins=allowed_origins(config))
        self.state = state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":  # queries and mutations belong to the API's POST /graphql
            body = envelope(400, "This address serves GraphQL subscriptions over WebSocket "
                                 "(graphql-transport-ws); send queries and mutations to the API's /graphql.")
            return await JSONResponse(body, status_code=400)(scope, receive, send)
        return await super().__call__(scope, receive, send)

    def encode_json(self, data: object) -> str:
        """A `next` message, its payload encoded once for every subscriber given the same result
        (webapp/graphql/subscriptions.py `shared_post`): only the operation id differs."""
        payload = data.get("payload") if type(data) is dict and data.get("type") == "next" else None
        if type(payload) is not dict or len(payload) != 1 or type(payload.get("data")) is not dict:
            return super().encode_json(data)
        result = payload["data"]
        kept = _encoded.get(id(result))
        if kept is None or kept[0] is not result:
            if len(_encoded) >= 256:
                _encoded.clear()
            kept = _encoded[id(result)] = (result, super().encode_json(payload))
        return f'{{"id":{json.dumps(data["id"])},"type":"next","payload":{kept[1]}}}'

    async def get_context(self, request, response) -> RealtimeContext:
        return RealtimeContext(request=request, state=self.state)

    async def on_ws_connect(self, context: RealtimeContext):
        params = context.connection_params or {}
        authorization = auth.bearer_of(params.get("Authorization", params.get("authorization")))
        try:
            principal = await auth.authenticate(self.state.flask, authorization)
        except Unauthenticated as error:
            raise Refused(UNAUTHORIZED, error.message) from None
        except Unavailable as error:
            raise Refused(TRY_AGAIN, error.message) from None
        websocket = context.request
        connection = Connection(PROTOCOL, f"ip:{websocket.client.host if websocket.client else ''}",
                                close=lambda code, reason: websocket.close(code=code, reason=reason))
        if principal is not None:
            context.viewer, context.session_id = principal.user, principal.session_id
            connection.key, connection.user_id = f"user:{principal.user.id}", principal.user.id
            connection.session_id, connection.expires_at = principal.session_id, principal.expires_at
        if not self.state.registry.open(connection):
            raise Refused(TOO_MANY, "Too many open connections.")
        context.connection = connection
        return UNSET


def allowed_origins(config) -> list[str]:
    """Browser pages that may open a socket: any (the token is in the payload, no cookie rides
    along) unless CORS_ORIGINS is set; then those and the API's own origin (GraphiQL)."""
    origins = list(config["CORS_ORIGINS"])
    if not origins:
        return ["*"]
    from urllib.parse import urlsplit

    base = urlsplit(config["PUBLIC_BASE_URL"])
    return [*origins, f"{base.scheme}://{base.netloc}"]
