"""The small routes around the APIs: health, vendored browser assets, static files."""
from __future__ import annotations

import posixpath
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
    """Readiness: the database (and Redis when configured) answer; 503 otherwise."""
    from webapp.extensions import db

    checks = {}
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready
        checks["database"] = f"error: {exc.__class__.__name__}"
    redis_url = current_app.config["REDIS_URL"]
    if redis_url:
        import redis

        try:
            redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1).ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {exc.__class__.__name__}"
    ok = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503


def vendor(package: str, filename: str):
    prefix = VENDOR_PACKAGES.get(package)
    filename = posixpath.normpath(filename)
    if prefix is None or not filename.startswith(prefix) or filename.startswith(".."):
        abort(404)
    root = Path(current_app.config["VENDOR_ASSETS_DIR"]) / package
    return send_from_directory(root, filename, max_age=86400)


def static_files(filename: str):
    return send_from_directory(STATIC_DIR, filename, max_age=3600)
