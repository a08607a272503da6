"""Read replicas: reads that need no write go to PostgreSQL streaming replicas, never stale for the writer.

How the pieces fit (PRODUCT.md "Read replicas"; settings DATABASE_REPLICA_URLS,
REPLICA_MAX_LAG_SECONDS, REPLICA_POLL_SECONDS):

- One engine per replica, with the primary's pool settings (`application_name` names the target:
  `delta-primary`, `delta-replica-N`, so `pg_stat_activity` shows who reads where).
- Routing (routing.py) is decided per session, which lives one request or one task. A request
  that only reads (REST GET/HEAD; a GraphQL document whose operation is a query, marked by
  graphql.py before any resolver runs) picks a target at its first SELECT and keeps it to the
  end. Anything that writes — a flush, DML, text SQL, `FOR UPDATE` — goes to the primary, and
  the session then stays on the primary for the rest of the request, so it reads its own flush.
  Every other request and every task uses the primary from its first statement to its last.
- Authentication stays on the primary: the principal lookup (webapp/auth/tokens.py) uses the
  primary engine directly, so a revoked session or token is refused at once on every host.
- Read-your-writes by WAL position (lsn.py): after a commit on the primary, one
  `SELECT pg_current_wal_lsn()` (after the commit: the commit record is then behind it; an insert
  position read inside the transaction would precede it) is raised into Redis under the writer:
  the user, or the client address for the anonymous writes (sign-up, login). The key lives a bit
  longer than REPLICA_MAX_LAG_SECONDS: past that, every replica still in use has replayed it.
- The monitor (monitor.py): a thread per process polls the primary's current LSN and each
  replica's replay LSN every REPLICA_POLL_SECONDS. A replica whose replay position is at the
  primary's is not lagging, however long ago its last transaction was; else its lag is the time
  since the primary passed its replay position. Down, or lagging more than
  REPLICA_MAX_LAG_SECONDS, it is skipped and re-probed.
- The per-request cost: nothing for a request that runs no SQL (`/users/me`); else one Redis MGET
  (the user's and the address's LSN) when a replica is usable, and no SQL. A replica that refuses
  the connection is marked down and the read goes to the primary, with no error.
- The shared cache (webapp/caching.py): a value read on a replica is stored only when that
  replica had replayed the WAL position of the last invalidation (recorded before the versions
  are bumped), so a replica never puts an older version, or a 404, in the cache.
- SQLite and the embedded default have no replicas; DATABASE_REPLICA_URLS with a primary that is
  not PostgreSQL, or without REDIS_URL, is refused at start-up.
"""
from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import make_url

from conf.settings import ConfigError
from webapp.replicas.routing import Router, after_commit, may_fill_cache, note_invalidation, reads_only

__all__ = ["init_app", "after_commit", "may_fill_cache", "note_invalidation", "reads_only", "report"]


def init_app(app) -> None:
    """Build the router when replicas are configured; without them nothing changes."""
    urls = app.config.get("DATABASE_REPLICA_URLS") or []
    app.extensions["database_router"] = None
    if not urls:
        return
    primary = app.extensions["database"]
    if primary.dialect.name != "postgresql":
        raise ConfigError(
            "DATABASE_REPLICA_URLS needs a PostgreSQL primary (DATABASE_URL); "
            f"it is {primary.dialect.name}. Unset DATABASE_REPLICA_URLS.")
    for url in urls:
        if not make_url(url).drivername.startswith("postgresql"):
            raise ConfigError(f"DATABASE_REPLICA_URLS: {make_url(url)!r} is not a PostgreSQL URL.")
    if not app.config.get("REDIS_URL"):
        raise ConfigError("DATABASE_REPLICA_URLS needs REDIS_URL: every host must see each "
                                 "client's last write position (read-your-writes).")
    app.extensions["database_router"] = Router.build(app)
    from webapp.db import AppSession
    from webapp.replicas.routing import before_flush

    if not event.contains(AppSession, "before_flush", before_flush):
        event.listen(AppSession, "before_flush", before_flush)


def report(app) -> list[dict]:
    """Each replica for /ready: url without password, state, lag_seconds, replay_lsn."""
    router = app.extensions.get("database_router")
    return router.report() if router is not None else []


class ReplicaGauges:
    """Each replica's lag and whether it is in use, as this process's monitor sees them at scrape time."""

    def __init__(self, router):
        self.router = router

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        lag = GaugeMetricFamily("delta_db_replica_lag_seconds", "Replica lag behind the primary", labels=["replica"])
        up = GaugeMetricFamily("delta_db_replica_up", "1 when the replica serves reads (reachable, within the "
                               "maximum lag)", labels=["replica"])
        for replica in self.router.report():
            if replica["lag_seconds"] is not None:
                lag.add_metric([replica["name"]], replica["lag_seconds"])
            up.add_metric([replica["name"]], 1 if replica["state"] == "up" else 0)
        yield lag
        yield up


def register_metrics(registry, app) -> None:
    """Add the replica gauges to a scrape's registry (nothing without replicas)."""
    router = app.extensions.get("database_router")
    if router is not None:
        registry.register(ReplicaGauges(router))
