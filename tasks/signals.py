"""Per-task observability: one JSON log line per task, durations in Prometheus, request ids carried over.

`webapp.dispatch.enqueue` records the enqueuing request's id on the outbox row and the relay
(webapp/outbox/relay.py) puts it in the message headers; here it is restored for the task's own
log lines, so one id follows a sign-up from the request to its email.
Durations go to a histogram; with PROMETHEUS_MULTIPROC_DIR shared with the web processes of the
same host, the web's /metrics shows them too.
"""
from __future__ import annotations

import logging
import time

from celery import signals
from prometheus_client import Histogram

from webapp import observability

log = logging.getLogger("tasks")
DURATION = Histogram("delta_task_duration_seconds", "Celery task duration", ["task", "state"],
                     buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800))
_started: dict[str, float] = {}


@signals.task_prerun.connect
def _prerun(task_id=None, task=None, **_):
    _started[task_id] = time.perf_counter()
    if task is not None:
        carried = getattr(task.request, "request_id", None) or (task.request.headers or {}).get("request_id")
        if carried:  # (eager runs set it before calling the task)
            observability.task_request_id.set(carried)


@signals.task_postrun.connect
def _postrun(task_id=None, task=None, state=None, **_):
    elapsed = time.perf_counter() - _started.pop(task_id, time.perf_counter())
    name = task.name if task else "unknown"
    DURATION.labels(name, state or "UNKNOWN").observe(elapsed)
    log.info("task", extra={"fields": {"task": name, "task_id": task_id, "state": state,
                                       "duration_ms": round(elapsed * 1000, 2),
                                       "request_id": observability.task_request_id.get()}})
    observability.task_request_id.set(None)
