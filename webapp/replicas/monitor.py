"""The replica monitor: one thread per process learns where each replica is, so requests ask no SQL.

Every REPLICA_POLL_SECONDS it reads the primary's `pg_current_wal_lsn()` (kept as timed samples)
and each replica's `pg_last_wal_replay_lsn()`. A replica that has replayed up to the primary's
latest position is not lagging, even when nothing was written for an hour (the usual
`now() - pg_last_xact_replay_timestamp()` would call it an hour behind); otherwise its lag is the
time since the primary passed its replay position. States: `up` (used), `lagging` (reachable,
more than REPLICA_MAX_LAG_SECONDS behind: skipped), `down` (unreachable, not a standby, or not
probed yet: skipped, re-probed every REPROBE_SECONDS). The thread is started on first use in
each process (gunicorn workers fork after the app is built) and uses connections of its own,
never the request pools.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import psycopg
from sqlalchemy.engine import Engine, make_url

log = logging.getLogger("webapp.replicas")

REPROBE_SECONDS = 1.0
PRIMARY_SQL = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
REPLICA_SQL = "SELECT pg_is_in_recovery(), pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint"


def format_lsn(value: int | None) -> str | None:
    """PostgreSQL's `X/Y` spelling of a WAL position."""
    return None if value is None else f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def conninfo(url: str) -> str:
    """A libpq URI for a SQLAlchemy URL (the monitor talks to psycopg directly)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Replica:
    """One replica as this process last saw it; requests read these fields, the monitor writes them."""

    name: str
    url: str  # without the password, for /ready
    engine: Engine
    conninfo: str = field(repr=False)
    state: str = "down"
    replay_lsn: int | None = None
    lag_seconds: float | None = None
    error: str | None = None
    next_probe: float = 0.0
    connection: object = field(default=None, repr=False)

    def mark_down(self, reason: str) -> None:
        if self.state != "down":
            log.warning("replica %s is down: %s", self.name, reason)
        self.state, self.error = "down", reason
        self.next_probe = time.monotonic() + REPROBE_SECONDS
        _close(self)

    def view(self) -> dict:
        lag = None if self.lag_seconds is None else round(self.lag_seconds, 3)
        return {"name": self.name, "url": self.url, "state": self.state, "lag_seconds": lag,
                "replay_lsn": format_lsn(self.replay_lsn)}


def _close(holder) -> None:
    connection, holder.connection = holder.connection, None
    if connection is not None:
        try:
            connection.close()
        except Exception:  # already broken: nothing to release
            pass


class Monitor:
    def __init__(self, primary_url: str, replicas: list[Replica], *, max_lag: float, poll: float,
                 connect_timeout: int):
        self.primary_conninfo = conninfo(primary_url)
        self.replicas, self.max_lag, self.poll = replicas, max_lag, poll
        self.connect_timeout = max(2, connect_timeout)  # libpq's minimum
        # (monotonic time, primary LSN), enough to measure a lag a little past the maximum.
        self.samples: deque = deque(maxlen=int((max_lag + 2) / poll) + 2)
        self.connection = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.first_round = threading.Event()  # set once this process has probed every replica
        os.register_at_fork(after_in_child=self._forked)

    def ensure_running(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(target=self._run, name="delta-replica-monitor", daemon=True)
                    self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        for holder in (self, *self.replicas):
            _close(holder)

    def _forked(self) -> None:
        """A forked worker has no monitor thread and must not share the parent's sockets."""
        self._thread, self._lock, self.first_round = None, threading.Lock(), threading.Event()
        self.connection = None
        for replica in self.replicas:
            replica.connection, replica.state = None, "down"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # never let the thread die: the next round tries again
                log.exception("replica monitor round failed")
            self.first_round.set()
            self._stop.wait(self.poll)

    def poll_once(self) -> None:
        now = time.monotonic()
        primary = self._primary_lsn()
        if primary is not None:
            self.samples.append((now, primary))
        for replica in self.replicas:
            self._probe(replica)

    def _connect(self, info: str, name: str):
        return psycopg.connect(info, autocommit=True, connect_timeout=self.connect_timeout,
                               application_name=name, options="-c statement_timeout=2000")

    def _primary_lsn(self) -> int | None:
        try:
            if self.connection is None:
                self.connection = self._connect(self.primary_conninfo, "delta-monitor")
            return self.connection.execute(PRIMARY_SQL).fetchone()[0]
        except psycopg.Error as exc:
            log.warning("replica monitor cannot read the primary's position: %s", type(exc).__name__)
            _close(self)
            return None

    def _probe(self, replica: Replica) -> None:
        if replica.state == "down" and time.monotonic() < replica.next_probe:
            return
        try:
            if replica.connection is None:
                replica.connection = self._connect(replica.conninfo, "delta-monitor")
            in_recovery, replay = replica.connection.execute(REPLICA_SQL).fetchone()
        except psycopg.Error as exc:
            replica.mark_down(type(exc).__name__)
            return
        if not in_recovery or replay is None:
            replica.mark_down("not a standby (promoted, or not a replica)")
            return
        lag = self.lag(replay, time.monotonic())
        replica.replay_lsn, replica.lag_seconds, replica.error = replay, lag, None
        state = "up" if lag <= self.max_lag else "lagging"
        if state != replica.state:
            log.log(logging.INFO if state == "up" else logging.WARNING, "replica %s is %s (lag %.1fs)",
                    replica.name, state, lag)
        replica.state = state

    def lag(self, replay: int, now: float) -> float:
        """Seconds since the primary first wrote past `replay`; 0 when the replica has it all."""
        behind_since = None
        for taken, position in reversed(self.samples):
            if position <= replay:
                break
            behind_since = taken
        return 0.0 if behind_since is None else now - behind_since
