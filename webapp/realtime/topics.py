"""What a stream may follow: the public `posts` topic and `jobs/{id}` (owner or admin, via the services)."""
from __future__ import annotations

import re

from webapp.errors import Invalid

POSTS = "posts"
SESSIONS = "sessions"
JOB_TOPIC = re.compile(r"jobs/([1-9][0-9]{0,17})")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def parse_topic(topic: str | None) -> tuple[str, int | None]:
    """(topic, job id or None); Invalid for anything but `posts` or `jobs/{id}`."""
    if topic == POSTS:
        return topic, None
    match = JOB_TOPIC.fullmatch(topic or "")
    if match is None:
        raise Invalid("Validation failed.", errors={"topic": ["Must be `posts` or `jobs/{id}`."]})
    return topic, int(match.group(1))


def job_state(session, user, job_id: int) -> dict:
    """The job as REST shows it (owner or admin; NotFound for anyone else)."""
    from webapp.events.publish import render
    from webapp.jobs import services as jobs

    return render(session, jobs.get_job(session, user, job_id))
