"""The database: one engine per process, one session per request or task.

`Database` is created unbound in `extensions.py` and bound by `init_app`, like the
other Flask extensions. The scoped session is removed when the app context ends,
so a request or a Celery task never sees another's state.
"""
from __future__ import annotations

import select
from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from flask import current_app, has_request_context, request
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.types import TypeDecorator

from webapp.compat.sqlalchemy import locks_rows

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL; SQLite only autoincrements a column declared INTEGER.
# Every model also sets {"sqlite_autoincrement": True}: without AUTOINCREMENT SQLite hands a
# deleted highest id to the next row, and ids live on in cache keys, tokens and clients' hands.
# (PostgreSQL sequences never go back; migration 0004 rebuilt the existing SQLite tables.)
BigId = BigInteger().with_variant(Integer(), "sqlite")
MAX_ID = 2**63 - 1
READS_ONLY = "db_reads_only"  # session.info: a unit of work that declared it only reads (a GraphQL query, a task)
WROTE = "db_wrote"  # session.info: this session has written: every statement in its transaction from then on
READ_METHODS = frozenset({"GET", "HEAD"})


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AppSession(Session):
    """A session bound to the engine of the app in context, so several apps can coexist.

    While `info["defer_commit"]` is set (a POST carrying an Idempotency-Key, webapp/idempotency),
    `commit()` only flushes and notes `info["commit_requested"]`: the request's writes are
    committed once, at its end, together with the key, and `after_commit` listeners (cache
    versions, the task outbox) fire only then. A `rollback()` meanwhile discards the deferred
    writes too (the request is all-or-nothing) and says so in `info["commit_discarded"]`.
    """

    def get_bind(self, mapper=None, *, clause=None, **kwargs):
        """The primary; with read replicas, the router's choice for this statement (webapp/replicas).

        On PostgreSQL a unit of work that only reads (`reads_only_unit`) runs its SELECTs outside
        a transaction, on the primary's autocommit engine: under READ COMMITTED each statement
        takes its own snapshot anyway, so BEGIN … ROLLBACK around them bought nothing but two
        round trips. Anything that may write — a flush, DML, text SQL, `FOR UPDATE`, a caller
        asking for the connection itself (`session.connection()`, `get_bind()`) — runs in the
        primary's transaction as always, and so does every later statement of the session (it
        reads its own writes, and what it locked stays locked).
        """
        extensions = current_app.extensions
        router = extensions["database_router"]
        if router is not None:
            return router.bind(self, clause)
        autocommit = extensions["database_autocommit_reads"]
        info = self.info
        if autocommit is None or WROTE in info:
            return extensions["database"]
        if clause is None or not clause.is_select or locks_rows(clause) or not reads_only_unit(info):
            info[WROTE] = True
            return extensions["database"]
        return autocommit

    def commit(self) -> None:
        if self.info.get("defer_commit"):
            self.flush()
            self.info["commit_requested"] = True
            return
        super().commit()

    def rollback(self) -> None:
        if self.info.pop("commit_requested", False):
            self.info["commit_discarded"] = True
        super().rollback()


class Database:
    def __init__(self):
        self.session = scoped_session(sessionmaker(class_=AppSession, expire_on_commit=False))

    def init_app(self, app) -> None:
        engine = make_engine(app.config)
        app.extensions["database"] = engine
        # Same pool, no transaction: one round trip for a lone read (no BEGIN, no ROLLBACK).
        app.extensions["database_reader"] = engine.execution_options(isolation_level="AUTOCOMMIT")
        # A read-only unit of work's SELECTs on PostgreSQL (`AppSession.get_bind`); SQLite has no round trips to save.
        app.extensions["database_autocommit_reads"] = \
            app.extensions["database_reader"] if engine.dialect.name == "postgresql" else None
        app.extensions["database_router"] = None  # webapp/replicas sets one when replicas are configured
        if not event.contains(AppSession, "before_flush", _writes):
            event.listen(AppSession, "before_flush", _writes)
        app.teardown_appcontext(self._remove_session)

    def reader(self):
        """A connection for a single read outside the request's transaction."""
        return current_app.extensions["database_reader"].connect()

    def _remove_session(self, exc=None):
        self.session.remove()

    @property
    def engine(self) -> Engine:
        return current_app.extensions["database"]


def _writes(session, _flush_context, _instances) -> None:
    """A session that flushes reads in its transaction from then on (what it wrote, before the commit)."""
    session.info[WROTE] = True


def reads_only_unit(info: dict) -> bool:
    """Whether a session (by its `info`) belongs to a unit of work that only reads: one that said so
    (`READS_ONLY`), or a GET/HEAD request or one that declared it (`request_reads_only`) — not one
    carrying an Idempotency-Key (it writes its key)."""
    if info.get(READS_ONLY):
        return True
    if info.get("defer_commit"):
        return False
    return has_request_context() and (request.method in READ_METHODS or READS_ONLY in request.environ)


def request_reads_only() -> None:
    """Declare that this request only reads (a GraphQL query document), for its session whether
    made yet or not: marking the request rather than the session makes none for a request that
    runs no SQL (a `me` answered from the principal)."""
    request.environ[READS_ONLY] = True


def make_engine(config, url: str | None = None, name: str = "delta-primary") -> Engine:
    """The engine for DATABASE_URL, or for `url` (a read replica) with the same pool settings."""
    url = url or config["DATABASE_URL"]
    options: dict = {"echo": config.get("DB_ECHO", False), "future": True}
    if url.startswith("sqlite"):
        options["connect_args"] = {"check_same_thread": False, "timeout": 15}
    else:
        threads = config.get("GUNICORN_THREADS", 4)
        options["pool_size"] = config.get("DB_POOL_SIZE") or threads
        options["max_overflow"] = max(2, threads // 2)
        options["pool_timeout"] = config.get("DB_POOL_TIMEOUT", 10)
        options["pool_recycle"] = 1800
        options["pool_reset_on_return"] = "rollback"
        # A database host that does not answer fails the request within seconds, not minutes.
        options["connect_args"] = {"connect_timeout": config.get("DB_CONNECT_TIMEOUT", 5)}
        if config.get("DATABASE_REPLICA_URLS"):  # pg_stat_activity tells the targets apart
            options["connect_args"]["application_name"] = name
    engine = create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        event.listen(engine, "checkout", _drop_if_closed_by_server)
    return engine


def _drop_if_closed_by_server(dbapi_connection, _record, _proxy):
    """Replace a pooled connection the server has already closed (restart, failover, idle kill).

    An idle connection has nothing to read; a readable socket means the server sent its
    termination notice and hung up. Raising DisconnectionError makes the pool discard it and
    connect afresh, so the first request after a PostgreSQL restart succeeds instead of
    failing on a dead connection. It is a non-blocking poll, not a round trip like pool_pre_ping.
    """
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # already closed on our side: fileno() raises
        raise DisconnectionError("connection already closed") from None
    poller = select.poll()  # poll, not select: no 1024-descriptor ceiling
    poller.register(fd, select.POLLIN | select.POLLPRI)
    if poller.poll(0):  # data, EOF, hang-up or error on an idle connection
        raise DisconnectionError("the server closed this connection")


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
