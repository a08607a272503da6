"""A stream's messages queued during one event-loop iteration and written together at its end.

The feed's reader hands a shared public event to every subscriber in one loop iteration
(webapp/events/feed.py `deliver_to`); each stream queues its message here instead of waking a
task per subscriber, and one callback per iteration writes every stream's queue, each in one
write (webapp/compat/uvicorn.py): one syscall per stream and iteration however many events a
backlog made ready at once. A stream that cannot take a message now (closing, or its socket
buffer full) refuses it (`put` → False): it then takes the ASGI path, which waits for the
buffer to drain, so a slow reader still falls behind in the feed and is dropped there.
"""
from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("webapp.realtime")
_queued: dict[asyncio.AbstractEventLoop, list[Outbox]] = {}  # outboxes with messages, per running loop


class Outbox:
    """One stream's queue over `writer` (`open()`, `write(messages) -> bool`)."""

    __slots__ = ("pending", "writer")

    def __init__(self, writer):
        self.writer = writer
        self.pending: list[str] | None = None

    def put(self, message: str) -> bool:
        """Queue `message` for the end of this iteration; False when the stream cannot take it now."""
        if self.pending is not None:  # already queued this iteration, and open then
            self.pending.append(message)
            return True
        if not self.writer.open():
            return False
        self.pending = [message]
        loop = asyncio.get_running_loop()
        queued = _queued.get(loop)
        if queued is None:
            queued = _queued[loop] = []
            loop.call_soon(_flush_all, loop)
        queued.append(self)
        return True

    def flush(self) -> None:
        """Write what is queued now (before anything the stream sends another way, to keep the order)."""
        messages, self.pending = self.pending, None
        if messages:
            self.writer.write(messages)  # False: the stream closed meanwhile; nobody to deliver to


def _flush_all(loop) -> None:
    for outbox in _queued.pop(loop, ()):
        try:
            outbox.flush()
        except Exception:  # one broken stream must not keep the others' messages
            log.exception("writing queued messages failed")
