"""Rate-limit headers: the draft's RateLimit-* beside flask-limiter's X-RateLimit-*, and on a 429 always."""
from __future__ import annotations

import time

from flask import current_app


def standard_headers(response):
    """The draft's RateLimit-* beside flask-limiter's X-RateLimit-*; on a 429 always, with Retry-After.

    Without RATELIMIT_HEADERS the limiter only counts (one storage round trip per request) and
    the window is read back only for a refusal, so a 429 still says when to come back.
    """
    if response.status_code != 429 and not current_app.config["RATELIMIT_HEADERS"]:
        return response  # nothing to copy (and each header lookup that misses raises inside Werkzeug)
    if response.status_code == 429 and "X-RateLimit-Limit" not in response.headers:
        current = current_app.extensions["delta_limiter"].current_limit
        if current is not None and current.breached:
            try:
                reset_at = current.reset_at
            except Exception:  # storage gone meanwhile: a conservative answer
                reset_at = int(time.time()) + 60
            response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
            response.headers["X-RateLimit-Remaining"] = "0"
            response.headers["X-RateLimit-Reset"] = str(reset_at)
            response.headers["Retry-After"] = str(max(1, reset_at - int(time.time())))
    for name in ("Limit", "Remaining", "Reset"):
        value = response.headers.get(f"X-RateLimit-{name}")
        if value is not None:
            response.headers.setdefault(f"RateLimit-{name}", value)
    return response
