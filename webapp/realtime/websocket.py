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
from contextvars import ContextVar
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

from webapp.compat.strawberry import SharedResults, kept_result, shared_executor
from webapp.compat.uvicorn import frame_writer
from webapp.errors import Unauthenticated, Unavailable, envelope
from webapp.events.feed import SlowSubscriber
from webapp.graphql.context import Context
from webapp.graphql.errors import shape
from webapp.graphql.loaders import Loaders
from webapp.realtime import auth, metrics
from webapp.realtime.connections import RAW_SEND, UNAUTHORIZED, Connection
from webapp.realtime.outbox import Outbox

PROTOCOL = "websocket"
TOO_MANY = 4429
TRY_AGAIN = 1013  # RFC 6455 "Try Again Later": the database is down
IDLE = 1000
_encoded: dict[int, tuple[dict, str]] = {}  # the latest results' payloads, kept with their result
OPERATION: ContextVar = ContextVar("delta_ws_operation")  # the graphql-transport-ws operation of this task


class Encoded(str):
    """A whole message already encoded (`RealtimeContext.send_kept`): `encode_json` sends it as is."""


def _next_prefix(operation_id: str) -> str:
    """A graphql-transport-ws `next` message up to its payload: `prefix + payload + "}"` is the
    message (the prefix made once per operation where a fan-out sends many)."""
    return f'{{"id":{json.dumps(operation_id)},"type":"next","payload":'


def _kept_payload(result: dict) -> str | None:
    """The encoded payload of `result` if `RealtimeGraphQL.encoded_payload` has it (the same object)."""
    kept = _encoded.get(id(result))
    return kept[1] if kept is not None and kept[0] is result else None


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
    view: object = None  # the RealtimeGraphQL serving the socket (its encoding)

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

    async def send_kept(self, root_value) -> bool:
        """Send a shared event's `next` message straight to the socket, when this operation's result
        for it is already known and encoded (another subscriber of the same document and variables
        got it: webapp/compat/strawberry.py `kept_result`); False → the resolver yields it instead.

        The same bytes the full path sends, without strawberry's per-result layers (its stream,
        extensions hooks, error shaping of a result that has no error): ~26 % of the process per
        delivery. Only a result without errors or extensions is kept, so nothing is skipped."""
        operation = OPERATION.get(None)
        result = kept_result(root_value) if operation is not None else None
        if result is None or operation.completed:
            return False
        payload = _kept_payload(result.data)
        if payload is None:
            return False
        text = f"{_next_prefix(operation.id)}{payload}}}"
        if not operation.handler.queue_frame(text):
            await operation.handler.send_message(Encoded(text))
        return True

    def fan_out(self, live, root_value, wanted, shared_root) -> None:
        """After the operation's first shared event went the full way (`root_value`, its `next`
        payload nothing but data): send the later ones from the feed's reader (`deliver_to`),
        executed once per document and variables for every subscriber, encoded once, one
        queued frame per socket (`Handler.queue_frame`). `wanted(event)` is the resolver's filter,
        `shared_root(event)` its shared root value. Anything the sink cannot do synchronously
        (an error, an async field, a full socket buffer, a completed operation) goes back to the
        resolver's queue and takes the full path, in order."""
        operation, executor, result = OPERATION.get(None), shared_executor(), kept_result(root_value)
        if operation is None or executor is None or result is None or self.view is None:
            return
        if _kept_payload(result.data) is None:
            return
        handler, encode, prefix = operation.handler, self.view.encoded_payload, _next_prefix(operation.id)

        def sink(event) -> bool:
            if handler.operations.get(operation.id) is not operation:
                return False  # completed: the operation's task ends its subscription
            if not wanted(event):
                metrics.delivered(PROTOCOL, event)
                return True
            result = executor.result_for(shared_root(event))
            if result is None or not handler.queue_frame(f"{prefix}{encode(result.data)}}}"):
                return False
            metrics.delivered(PROTOCOL, event)
            return True

        live.deliver_to(sink)

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

    def deliver_to(self, sink) -> None:
        self.live.deliver_to(sink)

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
    outbox: Outbox | bool | None = None  # webapp/realtime/outbox.py over compat/uvicorn.py's writer; False: none

    def queue_frame(self, text: str) -> bool:
        """Queue a message for one write at the end of this loop iteration (webapp/realtime/outbox.py);
        False when the socket cannot take it now (closing, buffer full): send it the ASGI way."""
        if self.outbox is None:
            writer = frame_writer(getattr(self.context.request, "scope", {}).get(RAW_SEND))
            self.outbox = Outbox(writer) if writer is not None else False
        return bool(self.outbox) and self.outbox.put(text)

    async def send_message(self, message) -> None:
        if self.outbox:  # every other message leaves after the queued ones, in order
            self.outbox.flush()
        await super().send_message(message)

    async def handle_connection_init(self, message) -> None:
        try:
            await super().handle_connection_init(message)
        except Refused as refused:
            metrics.REFUSED.labels(PROTOCOL, str(refused.code)).inc()
            await self.websocket.close(code=refused.code, reason=refused.reason)

    async def run_operation(self, operation) -> None:
        OPERATION.set(operation)  # this task's, for RealtimeContext.send_kept
        await super().run_operation(operation)

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
        if type(data) is Encoded:
            return data
        payload = data.get("payload") if type(data) is dict and data.get("type") == "next" else None
        if type(payload) is not dict or len(payload) != 1 or type(payload.get("data")) is not dict:
            return super().encode_json(data)
        return f"{_next_prefix(data['id'])}{self.encoded_payload(payload['data'])}}}"

    def encoded_payload(self, result: dict) -> str:
        """`{"data": result}` encoded, once per result object (the latest 256 kept)."""
        payload = _kept_payload(result)
        if payload is None:
            if len(_encoded) >= 256:
                _encoded.clear()
            payload = super().encode_json({"data": result})
            _encoded[id(result)] = (result, payload)
        return payload

    async def get_context(self, request, response) -> RealtimeContext:
        return RealtimeContext(request=request, state=self.state, view=self)

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
