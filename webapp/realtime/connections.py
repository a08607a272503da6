"""Open streams: the per-user (per-IP when anonymous) limit, and closing a session's streams at once.

Counted per realtime process: N processes behind a proxy allow up to N × the limit to one user
(the proxy spreads one client's connections; README: operations). A stream registers when it is
accepted and leaves when it ends. Logout or revocation (the `sessions` topic's
`session.revoked`) and its access token's expiry close it with 4401 (WebSocket) or end it (SSE).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from webapp.realtime import metrics

log = logging.getLogger("webapp.realtime")
UNAUTHORIZED = 4401
RAW_SEND = "delta.raw_send"


def keep_raw_send(scope, send):
    """The scope of a stream, with the server's own `send` kept in it (`RAW_SEND`), before Starlette
    wraps it: a shared event's message is queued and written through it (webapp/realtime/outbox.py).
    Called by the app itself (asgi.py `RealtimeApp`): Starlette's error middleware wraps an HTTP
    `send` before any middleware of the app's sees it."""
    if scope["type"] in ("websocket", "http"):
        scope[RAW_SEND] = send  # in place, as Starlette sets scope["app"]: no copy per connection
    return scope


@dataclass(eq=False)
class Connection:
    """One open stream. `close(code, reason)` ends it; `user_id`/`session_id` are None when anonymous."""

    protocol: str
    key: str
    close: Callable[[int, str], Awaitable[None]]
    user_id: int | None = None
    session_id: str | None = None
    expires_at: float | None = None
    _expiry: asyncio.TimerHandle | None = field(default=None, repr=False)


class Registry:
    """The open connections of this process, by limit key and by session."""

    def __init__(self, max_per_key: int):
        self.max_per_key = max_per_key
        self.by_key: dict[str, set[Connection]] = defaultdict(set)
        self.by_session: dict[str, set[Connection]] = defaultdict(set)
        self.by_user: dict[int, set[Connection]] = defaultdict(set)

    def open(self, connection: Connection) -> bool:
        """Register `connection`; False (and nothing registered) when its key is at the limit."""
        if len(self.by_key.get(connection.key, ())) >= self.max_per_key:
            metrics.REFUSED.labels(connection.protocol, "limit").inc()
            return False
        self.by_key[connection.key].add(connection)
        if connection.session_id is not None:
            self.by_session[connection.session_id].add(connection)
        if connection.user_id is not None:
            self.by_user[connection.user_id].add(connection)
        if connection.expires_at is not None:
            delay = max(0.0, connection.expires_at - time.time())
            connection._expiry = asyncio.get_running_loop().call_later(
                delay, lambda: self._end([connection], "Token has expired.", "expired"))
        metrics.CONNECTIONS.labels(connection.protocol).inc()
        return True

    def release(self, connection: Connection) -> None:
        """Forget a connection that has ended (idempotent)."""
        if connection not in self.by_key.get(connection.key, ()):
            return
        if connection._expiry is not None:
            connection._expiry.cancel()
        for index, name in ((self.by_key, connection.key), (self.by_session, connection.session_id),
                            (self.by_user, connection.user_id)):
            members = index.get(name)
            if members is not None:
                members.discard(connection)
                if not members:
                    del index[name]
        metrics.CONNECTIONS.labels(connection.protocol).dec()

    def revoke(self, session_id: str | None, user_id: int | None = None) -> None:
        """Close the streams of a session (or, with no session named, of every session of the user)."""
        if session_id is not None:
            targets = list(self.by_session.get(str(session_id), ()))
        else:
            targets = list(self.by_user.get(user_id, ()))
        self._end(targets, "Session revoked.", "revoked")

    def _end(self, connections, reason: str, label: str) -> None:
        for connection in connections:
            metrics.CLOSED.labels(connection.protocol, label).inc()
            task = asyncio.get_running_loop().create_task(connection.close(UNAUTHORIZED, reason))
            task.add_done_callback(_log_failure)
            self.release(connection)


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("closing a stream failed: %r", task.exception())
