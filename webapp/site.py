"""The small routes around the APIs: `/`, health, the emailed links' pages, browser assets, static files."""
from __future__ import annotations

import hashlib
import io
import mimetypes
import posixpath
from functools import lru_cache
from pathlib import Path

from flask import abort, current_app, jsonify, render_template, request, send_file, send_from_directory
from sqlalchemy import text

from webapp import validation

# Only these npm packages are served, and only from the folders that hold browser files.
VENDOR_PACKAGES = {
    "swagger-ui-dist": "",
    "redoc": "bundles/",
    "graphiql": "",
    "react": "umd/",
    "react-dom": "umd/",
}
# Bytes replaced in vendored files as they are served. ReDoc's sidebar credit ("API docs by
# Redocly") loads its logo from cdn.redoc.ly, and no ReDoc 2.x option turns it off: our CSP
# blocks it (a console error), and the docs would tell a third party each time they are opened.
BLANK_SVG = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E"
VENDOR_REWRITES = {
    ("redoc", "bundles/redoc.standalone.js"): ((b"https://cdn.redoc.ly/redoc/logo-mini.svg", BLANK_SVG),),
}
STATIC_DIR = Path(__file__).parent / "static"
# The pages at the targets of the emailed links (webapp/accounts/emails.py's PATHS).
LINK_PAGES = {
    "verify-email": {
        "title": "Verify your email address", "endpoint": "/api/v1/auth/verify-email", "password": False,
        "lead": "Confirm that this address is yours: press the button.", "button": "Verify my email address",
        "done": "Your email address is verified. You can close this page.",
    },
    "reset-password": {
        "title": "Choose a new password", "endpoint": "/api/v1/auth/password-reset/confirm", "password": True,
        "lead": "Choose the password of your account. Every device signed in to it will be signed out.",
        "button": "Save my password", "done": "Your password is saved. Sign in with it.",
    },
}


def init_app(app) -> None:
    app.add_url_rule("/", "root", root)
    app.add_url_rule("/favicon.ico", "favicon", favicon)
    app.add_url_rule("/health", "health", health)
    app.add_url_rule("/ready", "ready", ready)
    for path in LINK_PAGES:
        app.add_url_rule(f"/{path}", path, link_page, defaults={"page": path})
    app.add_url_rule("/vendor/<package>/<path:filename>", "vendor", vendor)
    app.add_url_rule("/static/<path:filename>", "static_files", static_files)


def root():
    """Where things are: a newcomer's first request lands here."""
    config = current_app.config
    base = request.script_root
    links = {"api": f"{base}/api/v1"}
    if config["DOCS_ENABLED"]:
        links.update(docs=f"{base}/docs", redoc=f"{base}/redoc", openapi=f"{base}/openapi.json")
    links.update(graphql=f"{base}/graphql", health=f"{base}/health")
    return jsonify(name="Delta", **links)


def favicon():
    return send_from_directory(STATIC_DIR, "favicon.ico", max_age=86400)


def link_page(page: str):
    """The page an emailed link opens. A GET changes nothing (mail scanners prefetch links):
    its button POSTs the link's token to the API (static/account-link.js)."""
    words = LINK_PAGES[page]
    html = render_template("account_link.html", **{**words, "endpoint": request.script_root + words["endpoint"]},
                           password_min=validation.PASSWORD_MIN, password_max=validation.PASSWORD_MAX)
    # The token is in the address: no cache keeps the page, no Referer carries it (that header is global).
    return html, 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}


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
    from webapp import replicas

    # Replicas are listed, never required: reads fall back to the primary (webapp/replicas).
    return jsonify(status="ok" if ok else "unavailable", checks=checks,
                   replicas=replicas.report(current_app)), 200 if ok else 503


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
    rewrites = VENDOR_REWRITES.get((package, filename))
    if rewrites and (root / filename).is_file():
        path = root / filename
        stat = path.stat()
        body = _rewritten(str(path), stat.st_mtime_ns, rewrites)
        return send_file(io.BytesIO(body), mimetype=mimetypes.guess_type(filename)[0], max_age=86400,
                         etag=hashlib.sha256(body).hexdigest()[:32], last_modified=stat.st_mtime,
                         conditional=True)
    return send_from_directory(root, filename, max_age=86400)


@lru_cache(maxsize=4)
def _rewritten(path: str, mtime_ns: int, rewrites: tuple) -> bytes:
    """The file with VENDOR_REWRITES applied, read once per version of it."""
    body = Path(path).read_bytes()
    for old, new in rewrites:
        body = body.replace(old, new)
    return body


def static_files(filename: str):
    return send_from_directory(STATIC_DIR, filename, max_age=3600)
