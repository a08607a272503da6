"""gunicorn settings, read from the environment so one file serves laptops and hosts."""
import multiprocessing
import os
import shutil
import tempfile

# prometheus-client's multiprocess mode: every worker writes its samples under this folder
# and /metrics sums them. It must be set before the app (and prometheus_client) is imported.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="delta-metrics-")

bind = os.environ.get("BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count())))
# gthread keeps connections alive and lets a worker overlap database waits; see README.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new connections
# across them. On one shared socket the worker that wakes first accepts a whole burst: with 32
# keep-alive connections `ss` showed 31 on one worker and 1 on the other, and that worker's GIL
# capped the host at one core (bench rounds at half their usual req/s). GUNICORN_REUSE_PORT=0
# restores the shared socket. With it on, a second master bound to the same port (same user)
# shares the traffic instead of failing, and connections not yet accepted by a worker that is
# killed are reset (Linux 5.14+: sysctl net.ipv4.tcp_migrate_req=1 hands them to its siblings).
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "1") != "0"
# gunicorn refuses these itself, before the app sees the request, with its own small HTML page
# (no JSON envelope, no app log line; its error log says "Invalid request from ip=..."):
# a request line past limit_request_line (414), a header line past limit_request_field_size or
# more than limit_request_fields headers (431), raw non-ASCII bytes in the request line and a
# malformed Content-Length or Transfer-Encoding (400). Room for a post-list cursor (up to 2,048
# characters) with the other query arguments, and for a bearer token (~300 bytes) many times over;
# a body's size is the app's MAX_CONTENT_LENGTH (413 in the envelope, chunked bodies too).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = None  # the app writes one JSON line per request instead
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
preload_app = False
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "0"))
# gunicorn ≥ 27 opens a control socket in $HOME by default; several instances on one host
# would fight over it, and nothing here uses it.
control_socket_disable = True


def on_starting(server):
    """Start each master with empty metric files (a restart must not double-count)."""
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
