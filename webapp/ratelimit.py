"""Rate limits, shared by every worker and host through Redis (in-process on the embedded default).

Two layers, one storage:
- flask-limiter's application limit (RATELIMIT_DEFAULT), set up here: one budget per signed-in
  user (or per IP when anonymous) that every endpoint, GraphQL included, draws from; a GraphQL
  request costs what webapp/ratelimit_cost.py says. (A default limit would be counted per
  endpoint: 600 on one route, then another route still answers.) Its per-request check takes a
  short way (webapp/compat/flask_limiter.py); its headers: webapp/ratelimit_headers.py.
- `guard(name, key)` (webapp/guard.py): named limits the services check for sensitive actions.

In development (`make run`), per-IP limits skip loopback callers (RATELIMIT_EXEMPT_LOOPBACK): a
local client or test suite signs up and logs in far more often from 127.0.0.1 than any one real
address would; per-account and per-user limits still apply. Production never exempts it.

When Redis is unreachable both layers fall back to per-process memory: limits get looser (each
process counts alone) but never vanish, and the API keeps answering. The Limiter is built per app
(flask-limiter keeps its storage on the instance), so tests can run apps with other limits.
"""
from __future__ import annotations

from flask import g, request
from flask_jwt_extended import decode_token

from webapp import guard
from webapp.auth.current import pat_principal, presented_pat
from webapp.compat.flask_limiter import DeltaLimiter, drop_default_limits, resolve_once
from webapp.guard import LOOPBACK, REJECTIONS
from webapp.ratelimit_cost import request_cost
from webapp.ratelimit_headers import standard_headers


def caller_key() -> str:
    """The signed-in user's id from the bearer token, else the IP.

    An access token's signature is checked (no database); a personal access token is looked up
    (the one statement the view would run, kept for it): an unverified id would let a caller
    spread its requests over made-up keys.
    """
    cached = g.get("ratelimit_key")
    if cached:
        return cached
    key = f"ip:{request.remote_addr}"
    header = request.headers.get("Authorization", "")
    pat = presented_pat()
    if pat is not None:
        try:
            key = f"user:{pat_principal(pat).id}"
        except Exception:  # refused, or the database is down: the view answers for it
            pass
    elif header[:7].lower() == "bearer ":
        try:
            key = f"user:{decode_token(header[7:].strip())['sub']}"
        except Exception:
            pass
    g.ratelimit_key = key
    return key


def init_app(app) -> None:
    config = app.config
    storage_uri = config["REDIS_URL"] or "memory://"
    app.after_request(standard_headers)  # after_request runs last-registered first: after the limiter's
    limiter = app.extensions["delta_limiter"] = DeltaLimiter(
        key_func=caller_key, app=app, application_limits=[config["RATELIMIT_DEFAULT"]],
        application_limits_cost=request_cost, storage_uri=storage_uri, strategy="fixed-window",
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1} if config["REDIS_URL"] else {},
        headers_enabled=config["RATELIMIT_HEADERS"], in_memory_fallback_enabled=True, swallow_errors=True,
        key_prefix="delta:limit", enabled=config["RATELIMIT_ENABLED"],
        on_breach=lambda limit: REJECTIONS.labels("default").inc(),
        application_limits_exempt_when=_exempt_anonymous_loopback if config["RATELIMIT_EXEMPT_LOOPBACK"] else None,
    )
    drop_default_limits(limiter)  # RATELIMIT_DEFAULT is the application limit, not also one per endpoint
    for endpoint in ("health", "ready", "metrics", "vendor", "static_files"):
        if endpoint in app.view_functions:
            limiter.exempt(app.view_functions[endpoint])
    resolve_once(limiter)
    guard.init_app(app, storage_uri)


def _exempt_anonymous_loopback() -> bool:
    """Development only: an anonymous caller on this very machine is not limited per IP."""
    return caller_key().startswith("ip:") and request.remote_addr in LOOPBACK
