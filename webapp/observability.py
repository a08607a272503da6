"""Request ids, one JSON log line per request, and Prometheus metrics from every worker.

The request id comes from `X-Request-ID` when the client or proxy sends a sane one, else
a fresh one; it is echoed back, put on every log line of the request and handed to the
tasks the request enqueues. Metrics use prometheus-client's multiprocess mode when
PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py sets it), so /metrics counts all workers.
"""
from __future__ import annotations

import hmac
import json
import logging
import os
import re
import sys
import time
from contextvars import ContextVar
from ipaddress import ip_address, ip_network

from flask import Response, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy import inspect as sa_inspect

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


def quiet_logs(command):
    """Give a CLI command `-v/--verbose`; without it the command logs warnings and errors only.

    A command's JSON log lines (one per email sent or task run) land in the middle of its
    progress bar; the operator asked for the command's work, not for its log.
    """
    import functools

    import click

    @click.option("-v", "--verbose", is_flag=True, help="Log at LOG_LEVEL (default: warnings and errors only).")
    @functools.wraps(command)
    def run(*args, verbose: bool, **kwargs):
        root = logging.getLogger()
        level = root.level
        if not verbose:
            root.setLevel(max(level, logging.WARNING))
        try:
            return command(*args, **kwargs)
        finally:
            root.setLevel(level)  # the app outlives the command in tests and shells
    return run


def init_app(app) -> None:
    # First of all before-request hooks: a request another hook refuses (a bad Idempotency-Key,
    # an unreadable body) still has its id and start time.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
    app.add_url_rule("/metrics", "metrics", metrics)
    app.extensions["delta_metrics_allow"] = [ip_network(item, strict=False) for item in app.config["METRICS_ALLOW"]]


def _start():
    incoming = request.environ.get("HTTP_X_REQUEST_ID", "")  # (headers.get raises and catches when absent)
    g.request_id = incoming if REQUEST_ID.match(incoming) else os.urandom(16).hex()  # as uuid4().hex, cheaper
    g.started = time.perf_counter()


def _finish(response):
    """The request's log line and metrics; never raises, so no answer loses its line."""
    if "request_id" not in g:  # a hook before _start failed
        _start()
    elapsed = time.perf_counter() - g.started
    response.headers["X-Request-ID"] = g.request_id
    try:
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        LATENCY.labels(request.method, endpoint).observe(elapsed)
    except Exception:  # metrics are best effort; the log line below is not
        logging.getLogger("webapp.errors").exception("request metrics failed")
    log.info("request", extra={"fields": {
        "method": request.method, "path": request.path, "status": response.status_code,
        "duration_ms": round(elapsed * 1000, 2), "user_id": _user_id(),
        "request_id": g.request_id, "ip": request.remote_addr,
    }})
    return response


def _user_id() -> int | None:
    """The caller's id from its identity key: reading `.id` would load it again from a session
    that a failed write left needing a rollback (PendingRollbackError, and no log line)."""
    principal = g.get("delta_principal")
    if principal is None:
        return None
    loaded = principal.__dict__  # the column as loaded, without the attribute machinery (hot path)
    if "id" in loaded:
        return loaded["id"]
    identity = sa_inspect(principal).identity
    return identity[0] if identity else None


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
    if current_app.config["ENV_NAME"] == "production" and not _may_scrape():
        abort(404)
    body = generate_latest(registry())
    jobs = CollectorRegistry(auto_describe=False)
    jobs.register(JobStates())
    from webapp import replicas

    replicas.register_metrics(jobs, current_app)  # each replica's lag and state (webapp/replicas)
    return Response(body + generate_latest(jobs), content_type=CONTENT_TYPE_LATEST)


def _may_scrape() -> bool:
    """In production: a caller in METRICS_ALLOW, or one sending `Authorization: Bearer <METRICS_TOKEN>`.

    Behind proxies, `remote_addr` is the client that TRUSTED_PROXIES (ProxyFix) names. A request
    carrying forwarding headers that no trusted proxy accounts for came through a proxy this app
    does not know of, so its address (the proxy's, often loopback) grants nothing.
    """
    config = current_app.config
    token = config["METRICS_TOKEN"]
    header = request.headers.get("Authorization", "")
    if token and header[:7].lower() == "bearer " and \
            hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    environ = request.environ
    if not config["TRUSTED_PROXIES"] and ("HTTP_X_FORWARDED_FOR" in environ or "HTTP_FORWARDED" in environ):
        return False
    try:
        address = ip_address((request.remote_addr or "").split("%")[0])
    except ValueError:  # a unix socket peer, or no address at all
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in current_app.extensions["delta_metrics_allow"])
