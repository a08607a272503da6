"""The realtime ASGI app: `uvicorn webapp.realtime.asgi:app --port ${REALTIME_PORT:-8001}` (`make realtime`).

Starlette composes the two protocols and the operator's routes: `/graphql` (WebSocket,
graphql-transport-ws), `/api/v1/events` (SSE), `/health` and `/metrics`. The Flask app built by
create_app() gives the settings, the database and the services; the lifespan starts the one
EventFeed reader of the process and the watcher that closes a revoked session's streams.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from types import SimpleNamespace

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from webapp.realtime import sse
from webapp.realtime.connections import Registry, keep_raw_send
from webapp.realtime.topics import SESSIONS
from webapp.security import API_CSP, EXPOSED_HEADERS, HSTS, STATIC_HEADERS

log = logging.getLogger("webapp.realtime")


def create_realtime_app(flask_app=None) -> Starlette:
    """The ASGI app over `flask_app` (default: create_app() from the environment)."""
    from webapp import create_app
    from webapp.events.feed import EventFeed
    from webapp.realtime.websocket import RealtimeGraphQL

    flask_app = flask_app or create_app()
    config = flask_app.config
    state = SimpleNamespace(flask=flask_app, feed=EventFeed(flask_app),
                            registry=Registry(config["REALTIME_MAX_CONNECTIONS_PER_USER"]))
    graphql = RealtimeGraphQL(flask_app.extensions["delta_graphql_schema"], state)  # the API's, same limits

    @asynccontextmanager
    async def lifespan(_app):
        await state.feed.start()
        watcher = asyncio.create_task(_close_revoked_sessions(state))
        try:
            yield
        finally:
            watcher.cancel()
            await state.feed.stop()

    async def metrics(request: Request) -> Response:
        return await _metrics(flask_app, request)

    middleware = [Middleware(SecurityHeaders, hsts=config["HSTS"])]
    if config["CORS_ORIGINS"]:
        middleware.append(Middleware(CORSMiddleware, allow_origins=config["CORS_ORIGINS"], allow_methods=["GET"],
                                     allow_headers=["Authorization", "Last-Event-ID"],
                                     expose_headers=EXPOSED_HEADERS, max_age=600))
    app = RealtimeApp(routes=[
        WebSocketRoute("/graphql", graphql),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/api/v1/events", sse.events),
        Route("/health", lambda _request: JSONResponse({"status": "ok"})),
        Route("/metrics", metrics),
    ], middleware=middleware, lifespan=lifespan)
    app.state.flask, app.state.feed, app.state.registry = state.flask, state.feed, state.registry
    return app


class RealtimeApp(Starlette):
    """Starlette, each stream's scope carrying the server's own `send` (connections.py `keep_raw_send`)."""

    async def __call__(self, scope, receive, send) -> None:
        await super().__call__(keep_raw_send(scope, send), receive, send)


async def _close_revoked_sessions(state) -> None:
    """Logout and revocation (the `sessions` topic) close that session's streams on this process."""
    while True:
        live = state.feed.subscribe(SESSIONS)
        try:
            async for event in live:
                data = event.data or {}
                state.registry.revoke(data.get("sid"), data.get("user_id"))
        except asyncio.CancelledError:
            raise
        except Exception:  # the feed recovers on its own; keep listening
            log.exception("session watcher failed; resubscribing")
        finally:
            await live.aclose()
        await asyncio.sleep(1)


async def _metrics(flask_app, request: Request) -> Response:
    """Prometheus text, gated in production exactly as the API's /metrics (METRICS_ALLOW / METRICS_TOKEN)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from webapp import observability
    from webapp.realtime import metrics as realtime_metrics

    realtime_metrics.flush()  # the deliveries tallied since the last event (metrics.delivered)
    if flask_app.config["ENV_NAME"] == "production":
        peer = request.client.host if request.client else ""
        with flask_app.test_request_context("/metrics", headers=dict(request.headers),
                                            environ_base={"REMOTE_ADDR": peer}):
            if not observability._may_scrape():  # the API's rule, on this request
                return JSONResponse({"code": 404, "status": "Not Found", "message": "Not found."}, 404)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class SecurityHeaders:
    """The API's security headers (webapp/security.py) on every HTTP answer of this process."""

    def __init__(self, app, hsts: bool = False):
        self.app = app
        pairs = [*STATIC_HEADERS, *((HSTS,) if hsts else ()), ("Content-Security-Policy", API_CSP)]
        self.headers = [(name.lower().encode(), value.encode()) for name, value in pairs]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, with_headers)


def _module_app():
    """`webapp.realtime.asgi:app`, built on first attribute access so importing this module is cheap."""
    return create_realtime_app()


def __getattr__(name: str):
    if name == "app":
        globals()["app"] = value = _module_app()
        return value
    raise AttributeError(name)
