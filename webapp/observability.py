"""Request ids, one JSON log line per request, and Prometheus metrics from every worker.

The request id comes from `X-Request-ID` when the client or proxy sends a sane one, else
a fresh one; it is echoed back, put on every log line of the request and handed to the
tasks the request enqueues. Metrics use prometheus-client's multiprocess mode when
PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py sets it), so /metrics counts all workers.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from contextvars import ContextVar

from flask import Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
task_request_id: ContextVar[str | None] = ContextVar("task_request_id", default=None)
log = logging.getLogger("webapp.request")

REQUESTS = Counter("delta_http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram("delta_http_request_duration_seconds", "HTTP request latency", ["method", "endpoint"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: the message plus whatever `extra={"fields": {...}}` carried."""

    def format(self, record: logging.LogRecord) -> str:
        body = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
                "msg": record.getMessage()}
        body.update(getattr(record, "fields", None) or {})
        if "request_id" not in body:
            rid = _current_request_id()
            if rid:
                body["request_id"] = rid
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return _to_json(body)


_to_json = json.JSONEncoder(default=str).encode  # one encoder: json.dumps(default=...) builds one per call


def _current_request_id() -> str | None:
    """The request's id, or in a task the id of the request that enqueued it."""
    rid = task_request_id.get()
    if rid:
        return rid
    try:
        return g.get("request_id")
    except RuntimeError:  # outside an app context
        return None


def current_request_id() -> str | None:
    return _current_request_id()


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the app's loggers; idempotent across app factories."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.handlers = [handler]
    root.setLevel(level.upper())  # LOG_LEVEL=info works as well as INFO
    # No formatter here or in Celery's shows the caller's file and line or the thread: skip
    # collecting them (the logging HOWTO's "Optimization"; `make bench-instructions`). Process
    # names stay: Celery's worker log lines show them.
    logging._srcfile = None
    logging.logThreads = False


def init_app(app) -> None:
    app.before_request(_start)
    app.after_request(_finish)
    app.add_url_rule("/metrics", "metrics", metrics)


def _start():
    incoming = request.environ.get("HTTP_X_REQUEST_ID", "")  # (headers.get raises and catches when absent)
    g.request_id = incoming if REQUEST_ID.match(incoming) else os.urandom(16).hex()  # as uuid4().hex, cheaper
    g.started = time.perf_counter()


def _finish(response):
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    response.headers["X-Request-ID"] = g.get("request_id", "")
    endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
    REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
    LATENCY.labels(request.method, endpoint).observe(elapsed)
    principal = g.get("delta_principal")
    log.info("request", extra={"fields": {
        "method": request.method, "path": request.path, "status": response.status_code,
        "duration_ms": round(elapsed * 1000, 2), "user_id": principal.id if principal else None,
        "request_id": g.get("request_id"), "ip": request.remote_addr,
    }})
    return response


def registry() -> CollectorRegistry:
    from prometheus_client import REGISTRY, multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        return collected
    return REGISTRY


class JobStates:
    """Jobs by state, read from the database at scrape time (the truth, whichever worker ran them)."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily
        from sqlalchemy import func, select

        from webapp.extensions import db
        from webapp.jobs.models import STATUSES, Job

        family = GaugeMetricFamily("delta_jobs", "Jobs by state", labels=["state"])
        try:
            with db.reader() as connection:
                counts = dict(connection.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        except Exception:  # the database is down: /ready says so; metrics still answer
            return
        for state in STATUSES:
            family.add_metric([state], counts.get(state, 0))
        yield family


def metrics():
    """Prometheus text format: requests, latency, cache, limits, tasks (all workers) and jobs by state."""
    body = generate_latest(registry())
    jobs = CollectorRegistry(auto_describe=False)
    jobs.register(JobStates())
    return Response(body + generate_latest(jobs), content_type=CONTENT_TYPE_LATEST)
