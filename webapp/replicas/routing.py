"""Which database a session's statements go to: a replica for a read-only unit of work, else the primary.

`Router.bind` is the session's `get_bind` when replicas are configured (webapp/db.py). The
choice is made once per session, at its first SELECT, and kept: a request reads one replica's
consistent timeline from its first statement to its last. Writes (a flush, DML, text SQL,
`FOR UPDATE`) go to the primary and pin the session there, so it reads what it has just written.
"""
from __future__ import annotations

import itertools
import logging

from flask import current_app, g, has_request_context, request
from prometheus_client import Counter
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from webapp.compat.sqlalchemy import locks_rows
from webapp.db import READS_ONLY, make_engine, reads_only_unit
from webapp.replicas.lsn import INVALIDATED, LsnStore, address_key, user_key
from webapp.replicas.monitor import PRIMARY_SQL, Monitor, Replica, conninfo

log = logging.getLogger("webapp.replicas")

TARGET = "db_target"  # session.info: the engine this session reads from (the primary once it writes)
REPLAY = "db_replay_lsn"  # session.info: that replica's replay position when it was chosen
READER = "db_reader_id"  # session.info: whose writes a read-only task must see (no request)
READS = Counter("delta_db_reads_total", "Read-only units of work (requests, tasks) by the database serving them",
                ["target"])


class Router:
    def __init__(self, primary, reader, replicas: list[Replica], monitor: Monitor, store: LsnStore):
        self.primary, self.reader = primary, reader
        self.replicas, self.monitor, self.store = replicas, monitor, store
        self._turn = itertools.count()

    @classmethod
    def build(cls, app) -> "Router":
        config = app.config
        replicas = []
        for number, url in enumerate(config["DATABASE_REPLICA_URLS"], 1):
            name = f"replica-{number}"
            shown = make_url(url).set(password=None).render_as_string(hide_password=False)
            replicas.append(Replica(name, shown, make_engine(config, url, f"delta-{name}"), conninfo(url)))
        max_lag, poll = config["REPLICA_MAX_LAG_SECONDS"], config["REPLICA_POLL_SECONDS"]
        monitor = Monitor(config["DATABASE_URL"], replicas, max_lag=max_lag, poll=poll,
                          connect_timeout=config.get("DB_CONNECT_TIMEOUT", 5))
        store = LsnStore(config["REDIS_URL"], ttl=int(max_lag + 2 * poll) + 3)
        return cls(app.extensions["database"], app.extensions["database_reader"], replicas, monitor, store)

    def bind(self, session, clause):
        info = session.info
        target = info.get(TARGET)
        if target is self.primary:
            return target
        if clause is None:  # session.connection(), get_bind() for the dialect: where it reads
            return target or self.primary
        if not clause.is_select or locks_rows(clause):
            info[TARGET] = self.primary
            return self.primary
        if target is None:
            target = info[TARGET] = self._choose(session)
        return target

    def _choose(self, session):
        """A replica that has replayed the reader's last write, is up and within the lag; else the primary."""
        info = session.info
        if not reads_only_unit(info):
            return self.primary
        self.monitor.ensure_running()
        usable = [(replica, replica.replay_lsn) for replica in self.replicas if replica.state == "up"]
        if usable:
            needed = self.store.needed(_reader_keys(info))
            fresh = [(replica, replay) for replica, replay in usable
                     if needed is not None and replay is not None and replay >= needed]
            if fresh:
                replica, replay = fresh[next(self._turn) % len(fresh)]
                try:  # connect now: a replica that refuses is left for the primary, cleanly
                    session.connection(bind_arguments={"bind": replica.engine})
                except DBAPIError as exc:
                    replica.state, replica.error = "down", type(exc.orig or exc).__name__
                    log.warning("replica %s refused a connection (%s): reading from the primary",
                                replica.name, replica.error)
                else:
                    info[REPLAY] = replay
                    READS.labels(replica.name).inc()
                    return replica.engine
        READS.labels("primary").inc()
        return self.primary

    def primary_position(self) -> int | None:
        """The primary's current WAL position: one statement on an autocommit connection."""
        try:
            with self.reader.connect() as connection:
                return connection.exec_driver_sql(PRIMARY_SQL).scalar()
        except DBAPIError as exc:
            log.error("could not read the primary's WAL position (%s)", type(exc).__name__)
            return None

    def report(self, wait: float = 2.0) -> list[dict]:
        self.monitor.ensure_running()
        self.monitor.first_round.wait(wait)  # a fresh worker answers with what it has learnt
        return [replica.view() for replica in self.replicas]


def _reader_keys(info) -> list[str]:
    if not has_request_context():
        reader = info.get(READER)
        return [user_key(reader)] if reader is not None else []
    principal = g.get("delta_principal")
    keys = [address_key(request.remote_addr or "")]
    if principal is not None:
        keys.append(user_key(principal.id))
    return keys


def _writer_keys() -> list[str]:
    if not has_request_context():
        return []
    principal = g.get("delta_principal")
    if principal is not None:
        return [user_key(principal.id)]
    return [address_key(request.remote_addr or "")]


def reads_only(session, reader_id: int | None = None) -> None:
    """Declare that this unit of work only reads (a GraphQL query, a read-only task): it may use a
    replica that has replayed `reader_id`'s last write (in a request: the caller's)."""
    session.info[READS_ONLY] = True
    if reader_id is not None:
        session.info[READER] = reader_id


def before_flush(session, _flush_context, _instances) -> None:
    """A session that writes does so on the primary and reads there from then on."""
    try:
        router = current_app.extensions.get("database_router")
    except RuntimeError:  # no app context: a script's session
        return
    if router is not None:
        session.info[TARGET] = router.primary


def after_commit(session, invalidating: bool) -> None:
    """Record the WAL position of a commit on the primary: under its writer (read-your-writes) and,
    when it made cache entries stale, as the last invalidation. Called before the versions are bumped."""
    target = session.info.get(TARGET)
    if target is None:  # no replicas, or nothing ran through this session
        return
    router = current_app.extensions["database_router"]
    if router is None or target is not router.primary:
        return
    keys = _writer_keys() + ([INVALIDATED] if invalidating else [])
    if keys:
        _record(router, keys)


def note_invalidation() -> None:
    """For `caching.bump()` called by hand after a commit: record the position before the bump."""
    router = current_app.extensions.get("database_router")
    if router is not None:
        _record(router, [INVALIDATED])


def _record(router: Router, keys: list[str]) -> None:
    position = router.primary_position()
    if position is not None:
        router.store.record(keys, position)


def may_fill_cache(session) -> bool:
    """Whether what this session read may go into the shared cache: read on the primary, or on a
    replica that had replayed the last invalidation (one Redis GET, on a replica-served miss only)."""
    replay = session.info.get(REPLAY)
    if replay is None:
        return True
    needed = current_app.extensions["database_router"].store.invalidated_at()
    return needed is not None and replay >= needed
