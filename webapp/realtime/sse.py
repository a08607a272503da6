"""`GET /api/v1/events?topic=posts|jobs/{id}`: Server-Sent Events, resumable with Last-Event-ID.

Refusals use the API's JSON error envelope (401, 404, 422, 429). Each event is `id:` (what
Last-Event-ID brings back), `event:` (post.published, job.progress) and `data:` (the REST
resource's JSON), the events ready at once in one chunk; a `: keep-alive` comment after
REALTIME_HEARTBEAT_SECONDS without one. A `jobs/{id}`
stream without Last-Event-ID starts with the job's current state (its newest event, with its
`id:`; read from the database, without `id:`, for a job older than its events) and ends after a
terminal state.
"""
from __future__ import annotations

import asyncio
import json

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from webapp import errors as domain
from webapp.compat.uvicorn import chunk_writer
from webapp.errors import envelope
from webapp.events.feed import SlowSubscriber
from webapp.realtime import auth, metrics, topics
from webapp.realtime.connections import RAW_SEND, Connection
from webapp.realtime.outbox import Outbox

PROTOCOL = "sse"
STATUS = {domain.Invalid: 422, domain.Unauthenticated: 401, domain.NotFound: 404, domain.Unavailable: 503}
BATCH = 64  # events sent in one chunk at most


def refusal(code: int, message: str, errors: dict | None = None, headers: dict | None = None) -> JSONResponse:
    headers = {"Cache-Control": "no-store", **(headers or {})}
    if code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(envelope(code, message, errors), status_code=code, headers=headers)


_frames: dict[tuple[str, str], str] = {}  # the latest events' frames: encoded once for every stream


def frame(event, *, with_id: bool = True) -> str:
    if not with_id:
        return f"event: {event.type}\ndata: {json.dumps(event.data, separators=(',', ':'))}\n\n"
    key = (event.topic, event.id)
    text = _frames.get(key)
    if text is None:
        if len(_frames) >= 256:
            _frames.clear()
        text = _frames[key] = f"id: {event.id}\n{frame(event, with_id=False)}"
    return text


async def events(request: Request):
    state = request.app.state
    try:
        topic, job_id = topics.parse_topic(request.query_params.get("topic"))
        last_id = _last_event_id(request, state.feed)
        principal = await auth.authenticate(state.flask, auth.bearer_of(request.headers.get("authorization")))
        if job_id is not None and principal is None:
            raise domain.Unauthenticated("Missing bearer token.")
        if job_id is not None:  # the services say who may follow it (someone else's job: 404)
            await auth.call(state.flask, topics.job_state, principal.user, job_id)
    except domain.DomainError as error:
        code = next(status for cls, status in STATUS.items() if isinstance(error, cls))
        metrics.REFUSED.labels(PROTOCOL, f"{code}").inc()
        return refusal(code, error.message, error.errors or None, {"Retry-After": "5"} if code == 503 else None)
    inbox = Inbox()
    connection = Connection(PROTOCOL, _key(request, principal), close=inbox.close)
    if principal is not None:
        connection.user_id, connection.session_id = principal.user.id, principal.session_id
        connection.expires_at = principal.expires_at
    if not state.registry.open(connection):
        return refusal(429, "Too many open streams.", headers={"Retry-After": "30"})
    user = principal.user if principal is not None else None
    stream = _stream(state, connection, inbox, topic, job_id, last_id, user, request.scope.get(RAW_SEND))
    return StreamingResponse(stream, media_type="text/event-stream", headers={
        "Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(state.registry.release, connection))  # also when never started


def _last_event_id(request: Request, feed) -> str | None:
    """Last-Event-ID (or `?last_event_id=`, for clients that cannot set headers); Invalid if malformed."""
    for field, value in (("Last-Event-ID", request.headers.get("last-event-id")),
                         ("last_event_id", request.query_params.get("last_event_id"))):
        if value:
            if not feed.valid_id(value):
                raise domain.Invalid("Validation failed.", errors={field: ["Not an event id of this stream."]})
            return value
    return None


def _key(request: Request, principal) -> str:
    if principal is not None:
        return f"user:{principal.user.id}"
    return f"ip:{request.client.host if request.client else ''}"


class Inbox:
    """What ends a stream early: `close` (logout, revocation, expiry) ends it at its next read,
    and a heartbeat, one timer per stream, wakes it for a keep-alive comment after a quiet
    REALTIME_HEARTBEAT_SECONDS. A client that reads too slowly stops pulling the body, the feed's
    bounded queue overflows and drops it, and the stream ends (the client resumes with its
    Last-Event-ID)."""

    def __init__(self):
        self.live = None
        self.closed = False
        self.sent_at = 0.0  # loop time of the last frame or comment sent
        self.quiet = False  # a heartbeat passed since then: a keep-alive is due
        self.timer: asyncio.TimerHandle | None = None
        self.clock = None  # the loop's clock, once beating

    async def close(self, code: int = 0, reason: str = "") -> None:
        self.closed = True
        if self.live is not None:
            self.live.wake()

    def start_beating(self, seconds: float) -> None:
        """Wake the stream `seconds` after the last thing it sent: one timer, not one per event."""
        loop = asyncio.get_running_loop()

        def beat():
            due = self.sent_at + seconds
            if loop.time() >= due - 0.001:
                self.quiet = True
                self.live.wake()
                due = loop.time() + seconds
            self.timer = loop.call_at(due, beat)

        self.clock = loop.time
        self.sent_at = loop.time()
        self.timer = loop.call_at(self.sent_at + seconds, beat)

    def sent(self) -> None:
        self.quiet = False
        self.sent_at = (self.clock or asyncio.get_running_loop().time)()

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


async def _stream(state, connection, inbox: Inbox, topic: str, job_id, last_id, user, raw_send=None):
    """The body: missed events, then live ones and keep-alive comments, until closed or finished.

    The feed's subscription replays what followed `last_id` before the live events, with no gap
    and no duplicate (webapp/events/feed.py). A job stream without Last-Event-ID first sends the
    topic's newest event (the job's current state, with its id) and follows on from that id, so no
    change is missed or repeated; a job with no retained event is read once the subscription is live.
    A `posts` stream's live events are queued from the feed's reader (`_fan_out`) while it waits.
    """
    newest = outbox = None
    if job_id is not None and last_id is None:  # the current state is the topic's newest event
        newest = await state.feed.newest(topic)
    live = state.feed.subscribe(topic, after=newest.id if newest is not None else last_id)
    heartbeat = state.flask.config["REALTIME_HEARTBEAT_SECONDS"]
    try:
        await live.ready()
        yield ": open\n\n"  # live from here on; the headers go out now, not with the first event
        if newest is not None:
            yield frame(newest)
            if _finished(newest):
                return
        elif job_id is not None and last_id is None:  # a job older than its events: read it
            current = await auth.call(state.flask, topics.job_state, user, job_id)
            yield f"event: job.progress\ndata: {json.dumps(current, separators=(',', ':'))}\n\n"
            if current["status"] in topics.TERMINAL:
                return
        inbox.live = live
        inbox.start_beating(heartbeat)
        outbox = _fan_out(live, inbox, raw_send) if job_id is None else None
        while not inbox.closed:
            try:
                batch = await live.batch(BATCH)
            except (SlowSubscriber, StopAsyncIteration):  # dropped, or the process is stopping
                return
            if inbox.closed:
                return
            if outbox is not None:  # what the reader queued leaves first
                outbox.flush()
            if not batch:
                if inbox.quiet:
                    inbox.sent()
                    yield ": keep-alive\n\n"
                continue
            inbox.sent()
            for index, event in enumerate(batch):
                metrics.delivered(PROTOCOL, event)
                if _finished(event):
                    yield "".join(frame(sent) for sent in batch[:index + 1])
                    return
            yield "".join(frame(event) for event in batch)
    finally:
        inbox.stop()
        if outbox is not None:
            outbox.flush()
        await live.aclose()
        state.registry.release(connection)


def _fan_out(live, inbox: Inbox, raw_send) -> Outbox | None:
    """The public stream's frames queued by the feed's reader while the stream waits (one write
    per stream and loop iteration, no task woken: webapp/realtime/outbox.py); None without a
    writer for this server, and then every event takes the generator's path."""
    writer = chunk_writer(raw_send)
    if writer is None:
        return None
    outbox = Outbox(writer)

    def sink(event) -> bool:
        if inbox.closed or not outbox.put(frame(event)):
            return False
        metrics.delivered(PROTOCOL, event)
        inbox.sent()
        return True

    live.deliver_to(sink)
    return outbox


def _finished(event) -> bool:
    return event.type == "job.progress" and event.data.get("status") in topics.TERMINAL
