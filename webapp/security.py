"""Response hardening: security headers on everything, CORS from configuration, docs behind auth,
no cookie sessions.

JSON answers get a CSP that allows nothing; the docs pages and GraphiQL get one that allows
only this origin's scripts (their assets are served locally) plus the inline styles that
Swagger UI, ReDoc and GraphiQL inject at run time.
"""
from __future__ import annotations

import base64
import hmac

from flask import current_app, request
from flask.sessions import SessionInterface
from flask_cors import CORS

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
DOC_PATHS = ("/docs", "/redoc", "/openapi.json")


# What a browser client reads from our answers: CORS hides every other response header from scripts.
EXPOSED_HEADERS = ["ETag", "Location", "X-Pagination", "X-Next-Cursor", "Link", "Retry-After", "X-Request-ID",
                   "Idempotent-Replayed", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
                   "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]


def init_app(app) -> None:
    origins = app.config.get("CORS_ORIGINS") or []
    if origins:
        # Vary: Origin is ours (`_headers`), on every answer: flask-cors adds it only when several
        # origins are configured, yet with one a cache could still serve an answer without the
        # Allow-Origin header to the allowed origin, or the other way round.
        CORS(app, origins=origins, supports_credentials=False, max_age=600, expose_headers=EXPOSED_HEADERS,
             vary_header=False)
    app.before_request(_guard_docs)
    app.after_request(_headers)
    app.extensions["delta_security_headers"] = _header_sets(app.config)
    app.extensions["delta_cors"] = bool(origins)
    app.session_interface = NoCookieSessions()


class NoCookieSessions(SessionInterface):
    """Delta is stateless: callers send bearer tokens and nothing uses Flask's cookie session.

    The stock interface still builds a signing serializer on every request (about 2 % of a
    `/users/me`, measured); with none opened `flask.session` is Flask's NullSession, which
    refuses writes loudly instead of quietly setting a cookie.
    """

    def open_session(self, app, request):
        return None

    def save_session(self, app, session, response):
        return None


def _is_doc_request() -> bool:
    path = request.path
    if path.startswith(DOC_PATHS):
        return True
    return path == "/graphql" and request.method == "GET" and "text/html" in request.headers.get("Accept", "")


def _guard_docs():
    """With DOCS_USERNAME/DOCS_PASSWORD set, the docs and GraphiQL need HTTP basic auth."""
    username, password = current_app.config.get("DOCS_USERNAME"), current_app.config.get("DOCS_PASSWORD")
    if not (username and password) or not _is_doc_request():
        return None
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            given_user, _, given_password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            given_user = given_password = ""
        if hmac.compare_digest(given_user.encode(), username.encode()) & \
                hmac.compare_digest(given_password.encode(), password.encode()):
            return None
    return ({"code": 401, "status": "Unauthorized", "message": "The documentation needs a login."}, 401,
            {"WWW-Authenticate": 'Basic realm="Delta docs", charset="UTF-8"'})


STATIC_HEADERS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                  ("Referrer-Policy", "no-referrer"), ("Cross-Origin-Opener-Policy", "same-origin"))
HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
PRIVATE = (("Cache-Control", "no-store"), ("Vary", "Authorization"))  # answers to a signed-in caller
TOKEN_PATHS = ("/api/v1/auth/", "/graphql")  # anonymous POSTs whose answers may hold live tokens


def _header_sets(config) -> dict[bool, tuple]:
    """The headers every answer gets, by "is an HTML page", built once per app."""
    common = (*STATIC_HEADERS, *((HSTS,) if config["HSTS"] else ()))
    return {False: (*common, ("Content-Security-Policy", API_CSP)),
            True: (*common, ("Content-Security-Policy", PAGE_CSP))}


def _headers(response):
    headers = response.headers
    if "Content-Security-Policy" not in headers:  # nothing else sets these: one check for all
        headers.extend(current_app.extensions["delta_security_headers"][response.mimetype == "text/html"])
    if "Authorization" in request.headers:
        if "Cache-Control" not in headers:
            headers.extend(PRIVATE)
    elif request.method == "POST" and request.path.startswith(TOKEN_PATHS) and "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"  # login, refresh (REST and GraphQL): never kept by a cache
    if current_app.extensions["delta_cors"]:
        response.vary.add("Origin")
    return response
