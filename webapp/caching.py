"""Read-through caching with invalidation driven by the unit of work.

A cached value lives under a versioned namespace (`user:42`, `posts`...). Models declare which
namespaces a change to one of their rows touches (`invalidates(obj)`); an ORM `after_flush`
hook collects them and `after_commit` bumps their versions, so every later read — on any
worker or host sharing the cache — misses and reloads. A rollback bumps nothing. Bulk UPDATE
statements bypass the hook: code that issues them must call `bump()` itself.

With read replicas, a value read on a replica is stored only when that replica had replayed the
WAL position of the last invalidation, recorded before every bump (webapp/replicas): a replica
behind a write would otherwise store the old row, or a 404, under the new version.

Backends: Redis when REDIS_URL is set; otherwise a file cache under instance/cache, so the
local gunicorn workers of the embedded default share invalidations (a per-process cache would
let one worker serve what another has just changed).
"""
from __future__ import annotations

import logging

from flask import current_app
from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.orm import Session

from webapp import replicas
from webapp.extensions import cache, db

log = logging.getLogger("webapp.cache")
LOOKUPS = Counter("delta_cache_lookups_total", "Cache lookups", ["result"])
_MISSING = object()


def settings(config) -> dict:
    if config["REDIS_URL"]:
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": config["REDIS_URL"],
                "CACHE_OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}}
    if config.get("TESTING"):
        return {"CACHE_TYPE": "SimpleCache"}  # one process
    return {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(config["INSTANCE_PATH"] / "cache"),
            "CACHE_THRESHOLD": 5000}


def _enabled() -> bool:
    return current_app.config.get("CACHE_ENABLED", True)


def cached(namespace: str, key: str, load, timeout: int | None = None):
    """`load()` through the cache under `namespace`; one round trip on a hit.

    The entry stores the namespace version it was loaded under; the version is read before
    loading, so an entry can only be older than its version says, never newer — a write
    committed meanwhile bumps the version and the entry is ignored. A cache outage only
    costs the cache.
    """
    if not _enabled():
        return load()
    data_key = f"d:{namespace}:{key}"
    try:
        version, entry = cache.get_many(f"v:{namespace}", data_key)
    except Exception:
        LOOKUPS.labels("error").inc()
        return load()
    version = int(version or 0)
    if entry is not None and entry[0] == version:
        LOOKUPS.labels("hit").inc()
        return entry[1]
    LOOKUPS.labels("miss").inc()
    value = load()
    if db.session.info.get("commit_requested"):
        # Uncommitted writes of this request (an Idempotency-Key defers its commit to the end,
        # webapp/db.py) may yet roll back: what was read over them must not be kept.
        return value
    if not replicas.may_fill_cache(db.session):  # read on a replica behind the last invalidation
        return value
    try:
        cache.set(data_key, (version, value), timeout=timeout)
    except Exception as exc:
        log.warning("cache write failed: %s", type(exc).__name__)
    return value


def bump(*namespaces: str) -> None:
    """Invalidate everything cached under these namespaces, for every reader (call it after the commit)."""
    if namespaces:
        replicas.note_invalidation()
    _bump(namespaces)


def _bump(namespaces) -> None:
    for namespace in namespaces:
        try:
            if not cache.cache.inc(f"v:{namespace}"):
                cache.set(f"v:{namespace}", 1, timeout=0)
        except Exception as exc:
            # A write whose invalidation fails must not be served stale: stop caching reads.
            log.error("cache invalidation of %s failed (%s)", namespace, type(exc).__name__)


def _collect(session: Session, _flush_context) -> None:
    touched = session.info.setdefault("cache_namespaces", set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        hook = getattr(obj, "cache_namespaces", None)
        if hook is not None:
            touched.update(hook())


def _flush_versions(session: Session) -> None:
    namespaces = session.info.pop("cache_namespaces", None)
    try:
        # First the commit's WAL position (its writer's, and the invalidation's), then the versions:
        # a reader that sees a new version also sees the position a replica must have replayed.
        replicas.after_commit(session, invalidating=bool(namespaces))
        if namespaces:
            _bump(namespaces)
    except RuntimeError:  # no app context (a script): nothing is cached there
        pass


def _forget(session: Session) -> None:
    session.info.pop("cache_namespaces", None)


def init_app(app) -> None:
    if not event.contains(Session, "after_flush", _collect):
        event.listen(Session, "after_flush", _collect)
        event.listen(Session, "after_commit", _flush_versions)
        event.listen(Session, "after_soft_rollback", lambda session, tx: _forget(session))
