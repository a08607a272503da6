"""GraphQL subscriptions, served only by the realtime process over WebSocket (webapp/realtime).

The same rules as every door: `postPublished` carries only `post.published` events (a post as
it becomes public, never a draft); `jobProgress` asks the jobs service first, so a stranger gets
NOT_FOUND and an anonymous socket UNAUTHENTICATED. Events carry the REST resource's JSON; they
become the same Post and Job types the queries return. The context (webapp/realtime/websocket.py)
gives the live events (`events`), the services in a worker thread (`call`) and the authors.
A post selected without its author is executed once per event and document, not per subscriber
(`shared_post`), and on a realtime socket its later events are sent from the feed's reader
(`send_kept`, `fan_out`: webapp/realtime/websocket.py).
"""
from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Optional

import strawberry
from strawberry.types import Info

from webapp.graphql.enums import JobStatus
from webapp.graphql.jobs import Job
from webapp.graphql.posts import Post
from webapp.jobs import services as jobs

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def _when(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def post_of(data: dict) -> Post:
    return Post(id=data["id"], title=data["title"], content=data["content"], published=data["published"],
                created_at=_when(data["created_at"]), updated_at=_when(data["updated_at"]),
                author_id=data["author_id"])


_recent: dict[tuple[str, str], Post] = {}  # the Post of each of the latest events, for every subscriber


def shared_post(event) -> Post:
    """The event's Post, one for every subscriber: its `shared_results` let the executor
    (webapp/compat/strawberry.py `SharedResults`) run each distinct document once per event; a
    public post's fields other than `author` read the same for every viewer."""
    key = (event.topic, event.id)
    post = _recent.get(key)
    if post is None:
        if len(_recent) >= 256:
            _recent.clear()
        post = _recent[key] = post_of(event.data)
        post.shared_results = {}
    return post


def job_of(data: dict) -> Job:
    return Job(**{**data, "status": JobStatus(data["status"]), "created_at": _when(data["created_at"]),
                  "started_at": _when(data["started_at"]), "finished_at": _when(data["finished_at"])})


def _selects(selections, name: str) -> bool:
    """Whether the selection (fragments included) asks for field `name` at its top level."""
    for selection in selections:
        if getattr(selection, "name", None) == name:
            return True
        if not hasattr(selection, "name") and _selects(selection.selections, name):
            return True
    return False


def _current_job(session, viewer, job_id: int) -> Job:
    return Job.from_model(jobs.get_job(session, viewer, job_id))


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Each post as it becomes visible to everyone (created published, or a "
                                         "draft published), optionally of one author only; never a draft.")
    async def post_published(self, info: Info, author_id: Optional[int] = None) -> AsyncGenerator[Post, None]:
        with_author = _selects(info.selected_fields[0].selections, "author")
        live = info.context.events("posts")

        def wanted(event) -> bool:
            data = event.data
            return (event.type == "post.published" and bool(data.get("published"))
                    and (author_id is None or data["author_id"] == author_id))

        try:
            async for event in live:
                if not wanted(event):
                    continue
                if with_author:
                    await info.context.prime_authors([event.data["author_id"]])
                    yield post_of(event.data)
                    continue
                post = shared_post(event)
                send_kept = getattr(info.context, "send_kept", None)  # the realtime socket's shortcuts
                if send_kept is None or not await send_kept(post):
                    yield post
                    if send_kept is not None:  # the later events fan out from the feed's reader
                        info.context.fan_out(live, post, wanted, shared_post)
        finally:
            await live.aclose()

    @strawberry.subscription(description="A job's current state at once, then every change of its status or "
                                         "progress (owner or admin); completes once it has succeeded, failed "
                                         "or been cancelled.")
    async def job_progress(self, info: Info, id: int) -> AsyncGenerator[Job, None]:
        info.context.require_viewer()
        job = await info.context.call(_current_job, id)  # the services say who may follow it
        # The current state is the topic's newest event, and the live events follow that id: no
        # change is missed and none arrives twice or out of order (a job read from the database
        # after subscribing could be followed by older queued events: 60, 50, 60).
        newest = await info.context.newest(f"jobs/{id}")
        live = info.context.events(f"jobs/{id}", after=newest.id if newest is not None else None)
        try:
            if newest is not None:
                job = job_of(newest.data)
            else:  # a job older than its events: subscribe first, then read, as before
                await live.ready()
                job = await info.context.call(_current_job, id)
            yield job
            if job.status.value in TERMINAL:
                return
            async for event in live:
                if event.type == "job.progress":
                    yield job_of(event.data)
                    if event.data["status"] in TERMINAL:
                        return
        finally:
            await live.aclose()
