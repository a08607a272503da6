"""The small routes around the APIs: health, vendored browser assets, static files."""
from __future__ import annotations

import posixpath
from functools import lru_cache
from pathlib import Path

from flask import abort, current_app, jsonify, send_from_directory
from sqlalchemy import text

# Only these npm packages are served, and only from the folders that hold browser files.
VENDOR_PACKAGES = {
    "swagger-ui-dist": "",
    "redoc": "bundles/",
    "graphiql": "",
    "react": "umd/",
    "react-dom": "umd/",
}
STATIC_DIR = Path(__file__).parent / "static"


def init_app(app) -> None:
    app.add_url_rule("/health", "health", health)
    app.add_url_rule("/ready", "ready", ready)
    app.add_url_rule("/vendor/<package>/<path:filename>", "vendor", vendor)
    app.add_url_rule("/static/<path:filename>", "static_files", static_files)


def health():
    """Liveness: the process answers; no dependency is touched."""
    return jsonify(status="ok")


def ready():
    """Readiness: database reachable and migrated to head, Redis and the broker answer; 503 otherwise."""
    from webapp.extensions import db

    checks = {}
    try:
        with db.engine.connect() as connection:
            current = set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
        checks["database"] = "ok"
        heads = _migration_heads()
        checks["migrations"] = "ok" if current == heads else \
            f"error: at {sorted(current) or 'nothing'}, head is {sorted(heads)}"
    except Exception as exc:  # any failure means not ready
        checks["database"] = f"error: {exc.__class__.__name__}"
    config = current_app.config
    if config["REDIS_URL"]:
        checks["redis"] = _ping(config["REDIS_URL"])
    broker = config.get("CELERY_BROKER_URL") or ""
    if broker and broker != config["REDIS_URL"]:
        checks["broker"] = _ping(broker)
    elif config["REDIS_URL"]:
        checks["broker"] = checks["redis"]
    ok = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503


def _ping(url: str) -> str:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return "ok"  # not a Redis URL: nothing this probe knows how to check
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
        return "ok"
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"


@lru_cache(maxsize=1)
def _migration_heads() -> set:
    from alembic.script import ScriptDirectory

    from webapp.cli import alembic_config

    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def vendor(package: str, filename: str):
    prefix = VENDOR_PACKAGES.get(package)
    filename = posixpath.normpath(filename)
    if prefix is None or not filename.startswith(prefix) or filename.startswith(".."):
        abort(404)
    root = Path(current_app.config["VENDOR_ASSETS_DIR"]) / package
    return send_from_directory(root, filename, max_age=86400)


def static_files(filename: str):
    return send_from_directory(STATIC_DIR, filename, max_age=3600)
