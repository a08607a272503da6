"""Throw-away servers for the tests that need real processes: gunicorn, Redis, PostgreSQL, Celery.

Every server runs on a free port in a folder of its own, in its own process group, and is
stopped (SIGTERM, then SIGKILL of the group) by the fixture that started it: a test may kill
or restart these without ever touching the machine's shared PostgreSQL and Redis.

`services_urls()` is the gate for the `services` tests: skipped when TEST_DATABASE_URL or
TEST_REDIS_URL is unset, FAILED when one is set but cannot be reached.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The same secrets for every host of a test: tokens signed by one are accepted by the other.
SECRET = "test-secret-" + "x" * 40
# Variables of the developer's or CI's shell that must not leak into a server under test.
SCRUBBED = {"REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL", "CELERY_QUEUE_PREFIX", "SMTP_URL", "APP_ENV",
            "PROMETHEUS_MULTIPROC_DIR", "TEST_DATABASE_URL", "TEST_REDIS_URL", "INSTANCE_PATH",
            "OUTBOX_DIR", "JOB_RESULTS_DIR", "BIND", "HOST", "PORT"}
# High limits everywhere, so only the limit a test lowers can trip (and reruns never collide).
HIGH_LIMITS = {name: "100000/minute" for name in (
    "RATELIMIT_DEFAULT", "RATELIMIT_LOGIN_IP", "RATELIMIT_LOGIN_EMAIL", "RATELIMIT_LOGIN_FAILURES",
    "RATELIMIT_SIGNUP_IP", "RATELIMIT_PASSWORD_RESET_IP")}


# --- small helpers -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, *, timeout=20.0, what="condition", interval=0.1):
    """Poll `condition` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def kill_group(process: subprocess.Popen, sig=signal.SIGTERM, timeout=10.0) -> None:
    """Stop a process started with start_new_session=True and everything it started."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def tail(path: Path, size=3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def services_urls() -> tuple[str, str]:
    """(TEST_DATABASE_URL, TEST_REDIS_URL): skip when either is unset, fail when unreachable."""
    db_url, redis_url = os.environ.get("TEST_DATABASE_URL"), os.environ.get("TEST_REDIS_URL")
    if not db_url or not redis_url:
        pytest.skip("TEST_DATABASE_URL and TEST_REDIS_URL must both be set for the services tests")
    import redis
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(db_url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        pytest.fail(f"TEST_DATABASE_URL={db_url} is set but PostgreSQL is unreachable: {exc}")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"TEST_REDIS_URL={redis_url} is set but Redis is unreachable: {exc}")
    return db_url, redis_url


def server_env(home: Path, **overrides) -> dict:
    """The environment of a server process: the caller's shell, minus what would leak in."""
    env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    env.update({
        "APP_ENV": "development", "PYTHONPATH": str(ROOT), "INSTANCE_PATH": str(home),
        "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET, "LOG_LEVEL": "WARNING",
        "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", **HIGH_LIMITS,
    })
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def migrate(database_url: str, home: Path) -> None:
    """`flask --app wsgi db upgrade`, as ops run it."""
    result = subprocess.run([BIN / "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT,
                            env=server_env(home, DATABASE_URL=database_url), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


# --- gunicorn --------------------------------------------------------------------------------

class Gunicorn:
    """`gunicorn --config deploy/gunicorn.conf.py wsgi:app` on a free port, WEB_CONCURRENCY=2."""

    def __init__(self, home: Path, **env):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = self.home / "gunicorn.log"
        self.env = server_env(self.home, PORT=self.port, WEB_CONCURRENCY=2, GUNICORN_GRACEFUL_TIMEOUT=2,
                              PROMETHEUS_MULTIPROC_DIR=self.home / "metrics", **env)
        self.process: subprocess.Popen | None = None

    def start(self) -> "Gunicorn":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [BIN / "gunicorn", "--config", "deploy/gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, timeout=30.0) -> "Gunicorn":
        import requests

        def up():
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{tail(self.log)}")
            try:
                return requests.get(f"{self.base}/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_for(up, timeout=timeout, what=f"gunicorn on {self.base}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{tail(self.log)}") from None
        return self

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process, signal.SIGTERM, timeout=10)

    @staticmethod
    def stop_all(servers) -> None:
        """SIGTERM every master at once, then wait for each (SIGKILL of the group if it lingers)."""
        for server in servers:
            if server.process is not None and server.process.poll() is None:
                os.killpg(server.process.pid, signal.SIGTERM)
        for server in servers:
            server.stop()


# --- the realtime process --------------------------------------------------------------------

class Realtime:
    """`uvicorn webapp.realtime.asgi:app` on a free port: what `make realtime` runs."""

    def __init__(self, home: Path, **env):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}/graphql"
        self.log = self.home / "realtime.log"
        self.env = server_env(self.home, REALTIME_PORT=self.port, **env)
        self.process: subprocess.Popen | None = None

    def start(self) -> "Realtime":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [BIN / "uvicorn", "webapp.realtime.asgi:app", "--host", "127.0.0.1", "--port", str(self.port),
                 "--no-access-log"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        return self

    def wait_ready(self, timeout=30.0) -> "Realtime":
        import requests

        def up():
            if self.process.poll() is not None:
                raise AssertionError(f"uvicorn exited:\n{tail(self.log)}")
            try:
                return requests.get(f"{self.base}/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, timeout=timeout, what=f"the realtime process on {self.base}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process, signal.SIGTERM, timeout=10)


# --- Redis -----------------------------------------------------------------------------------

class RedisServer:
    """A throw-away redis-server (AOF on, noeviction, like production) that can be SIGKILLed."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.binary = shutil.which("redis-server")
        if not self.binary:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")

    def start(self) -> "RedisServer":
        import redis

        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--dir", str(self.folder), "--daemonize", "no",
                 "--maxmemory-policy", "noeviction"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def pong():
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited:\n{tail(self.folder / 'redis.log')}")
            try:
                return redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
            except redis.RedisError:
                return False

        wait_for(pong, timeout=10, what=f"redis-server on port {self.port}")
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save; only what the AOF already holds survives."""
        if self.process is not None:
            kill_group(self.process, signal.SIGKILL, timeout=5)


# --- PostgreSQL ------------------------------------------------------------------------------

def _pg_binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   reverse=True)), None)
    if not found:
        pytest.fail(f"{name} (PostgreSQL server binaries) not found on PATH or in /usr/lib/postgresql/*/bin")
    return found


class PostgresCluster:
    """A throw-away cluster: initdb, pg_ctl start / stop -m fast / start again, removed at the end.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` OS user
    (runuser); the folder lives in the system temp dir, which that user can reach (pytest's
    tmp_path is private to root).
    """

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="delta-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self.initdb, self.pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")

    def _run(self, *args, timeout=60) -> None:
        command = [str(a) for a in args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.folder)
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:],
                                        tail(self.folder / "log"))

    def init(self) -> "PostgresCluster":
        self._run(self.initdb, "-D", self.data, "-U", "postgres", "--auth=trust", "-N")
        return self

    def start(self) -> "PostgresCluster":
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(self.pg_ctl, "-D", self.data, "-o", options, "-l", self.folder / "log", "-w", "-t", "30",
                  "start")
        return self

    def stop(self, mode="fast") -> None:
        self._run(self.pg_ctl, "-D", self.data, "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_replica(primary: PostgresCluster) -> PostgresCluster:
    """A streaming replica of a running `primary`, started on a free port: `pg_basebackup -R`
    (a hot standby that streams the primary's WAL; PostgreSQL's defaults allow it: wal_level
    replica, wal senders, and initdb's trust line for replication from 127.0.0.1)."""
    replica = PostgresCluster()
    replica._run(_pg_binary("pg_basebackup"), "-h", "127.0.0.1", "-p", primary.port, "-U", "postgres",
                 "-D", replica.data, "-R", "-X", "stream", "-c", "fast", timeout=120)
    return replica.start()


# --- Celery workers against the shared Redis (used with the in-process `app` fixture) --------

VISIBILITY = 3  # seconds: short, so a killed worker's task comes back quickly


@pytest.fixture
def redis_broker(app, monkeypatch):
    """Point the app's Celery at TEST_REDIS_URL with queues of its own; fail if Redis is down."""
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("TEST_REDIS_URL is not set")
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"TEST_REDIS_URL={redis_url} is set but Redis is unreachable: {exc}")
    from webapp.celery_app import celery_init_app

    prefix = f"test-{uuid.uuid4().hex[:8]}-"
    healthy = app.extensions["celery"]
    monkeypatch.setitem(app.config, "CELERY_BROKER_URL", redis_url)
    monkeypatch.setitem(app.config, "CELERY_QUEUE_PREFIX", prefix)
    monkeypatch.setitem(app.config, "CELERY_VISIBILITY_TIMEOUT", VISIBILITY)
    celery_init_app(app)
    yield prefix
    app.extensions["celery"] = healthy
    healthy.set_default()
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)
    client.delete("unacked", "unacked_index")


@pytest.fixture
def start_worker(app, redis_broker, tmp_path):
    """Start `celery -A tasks.worker worker` processes on this test's queues; killed at the end."""
    workers = []
    env = {key: value for key, value in os.environ.items()
           if key not in {"REDIS_URL", "TEST_DATABASE_URL", "SMTP_URL", "APP_ENV"}}
    env.update({
        "APP_ENV": "development", "PYTHONPATH": str(ROOT),
        "INSTANCE_PATH": str(app.config["INSTANCE_PATH"]), "DATABASE_URL": app.config["DATABASE_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"], "JWT_SECRET_KEY": app.config["JWT_SECRET_KEY"],
        "CELERY_BROKER_URL": os.environ["TEST_REDIS_URL"], "CELERY_QUEUE_PREFIX": redis_broker,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY), "JOB_BATCH_SIZE": "2", "JOB_BATCH_DELAY": "0.3",
        "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024",
    })

    def start():
        log = tmp_path / f"worker-{len(workers)}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker", "--pool=solo",
             "-Q", f"{redis_broker}email,{redis_broker}heavy", "-n", f"{uuid.uuid4().hex[:6]}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel=INFO", f"--logfile={log}"],
            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        workers.append(process)
        wait_for(lambda: log.exists() and "ready." in log.read_text(), timeout=30,
                 what=f"worker start ({log})")
        return process

    yield start
    for process in workers:
        kill_group(process, signal.SIGTERM, timeout=10)


# --- fixtures: each server is stopped by the fixture that started it ---------------------------

@pytest.fixture
def gunicorns(tmp_path):
    """`start(**env)` → a ready Gunicorn; every one started is stopped (process group) at the end."""
    started: list[Gunicorn] = []

    def start(name="web", **env) -> Gunicorn:
        server = Gunicorn(tmp_path / name, **env)
        started.append(server)
        return server.start().wait_ready()

    yield start
    Gunicorn.stop_all(started)


@pytest.fixture
def start_realtime(tmp_path):
    """`start(**env)` → a ready Realtime process; every one started is stopped at the end."""
    started: list[Realtime] = []

    def start(name="realtime", **env) -> Realtime:
        server = Realtime(tmp_path / f"{name}-{len(started)}", **env)
        started.append(server)
        return server.start().wait_ready()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def throwaway_redis(tmp_path):
    server = RedisServer(tmp_path / "redis")
    try:
        yield server.start()
    finally:
        server.kill()


@pytest.fixture
def throwaway_postgres():
    cluster = PostgresCluster()
    try:
        yield cluster.init().start()
    finally:
        cluster.destroy()
