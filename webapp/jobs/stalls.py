"""Jobs whose worker died: a heartbeat while a job runs, and a detector that queues silent jobs again.

Late acknowledgement covers a killed pool child (the message comes back at once), but when the
whole worker dies its message only comes back after the broker's visibility timeout (over an
hour). So a running job beats `heartbeat_at` every JOB_STALL_SECONDS / 6 from a thread of its own
(a batch slower than that still beats), and `requeue_stalled`, run by beat every
JOB_STALL_SECONDS / 4, puts a job silent for JOB_STALL_SECONDS back to `queued` and asks for a
run through the outbox, in one transaction; the conditional update lets one detector win. A job
already run JOB_MAX_ATTEMPTS times fails instead, with an error that says why. The old message,
if it ever comes back, finds the job finished (or claimed again) and does nothing.
"""
from __future__ import annotations

import logging
import threading
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.dispatch import enqueue
from webapp.jobs.models import Job
from webapp.jobs.services import RUN_TASK, announce

log = logging.getLogger("webapp.jobs")


def heartbeat_interval(config) -> float:
    return max(0.5, config["JOB_STALL_SECONDS"] / 6)


def detector_interval(config) -> float:
    return max(1.0, config["JOB_STALL_SECONDS"] / 4)


class Heartbeat:
    """`with Heartbeat(job_id, attempt):` beats the job's heartbeat until the block ends."""

    def __init__(self, job_id: int, attempt: int):
        self.engine = current_app.extensions["database"]
        self.interval = heartbeat_interval(current_app.config)
        self.job_id, self.attempt = job_id, attempt
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat:job-{job_id}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                with self.engine.begin() as connection:
                    connection.execute(update(Job).where(
                        Job.id == self.job_id, Job.status == "running", Job.attempts == self.attempt)
                        .values(heartbeat_at=utcnow()))
            except Exception as exc:  # the database blinked: the next beat tries again
                log.warning("job %s: heartbeat not recorded: %s", self.job_id, exc)


def requeue_stalled(session: Session) -> dict:
    """Queue again (or fail, past JOB_MAX_ATTEMPTS) every running job silent for JOB_STALL_SECONDS."""
    config = current_app.config
    cutoff = utcnow() - timedelta(seconds=config["JOB_STALL_SECONDS"])
    last_beat = func.coalesce(Job.heartbeat_at, Job.started_at)
    stalled = session.execute(select(Job.id, Job.attempts).where(
        Job.status == "running", last_beat < cutoff)).all()
    session.rollback()
    counts = {"requeued": 0, "failed": 0}
    for job_id, attempts in stalled:
        still = (Job.id == job_id, Job.status == "running", Job.attempts == attempts, last_beat < cutoff)
        if attempts >= config["JOB_MAX_ATTEMPTS"]:
            error = (f"The job stopped answering {attempts} times (its worker died each time); "
                     "it was not run again.")
            won = session.execute(update(Job).where(*still).values(
                status="failed", finished_at=utcnow(), error=error)).rowcount
            counts["failed"] += won
            if won:
                announce(session, session.get(Job, job_id))
        else:
            won = session.execute(update(Job).where(*still).values(status="queued", progress=0)).rowcount
            if won:
                enqueue(RUN_TASK, job_id)
                announce(session, session.get(Job, job_id))
            counts["requeued"] += won
        session.commit()
        if won:
            log.warning("job %s stalled (no heartbeat for %ss, attempt %s): %s", job_id,
                        config["JOB_STALL_SECONDS"], attempts,
                        "failed" if attempts >= config["JOB_MAX_ATTEMPTS"] else "queued again")
    return counts
