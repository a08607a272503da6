"""Named rate limits for sensitive actions, checked by the services (`guard().hit(setting, key)`).

Login per IP, per email and failed logins per account; wrong two-factor codes per account; sign-up
and password reset per IP.
(Verification resends are limited by the accounts service from the tokens it has issued:
VERIFY_EMAILS_PER_HOUR.) The services call it, so GraphQL is limited exactly like REST. It
shares the application limit's storage (webapp/ratelimit.py) and, like it, falls back to
per-process memory when Redis is unreachable: looser, never gone. In development per-IP limits
skip loopback callers (RATELIMIT_EXEMPT_LOOPBACK); per-account ones still apply.
"""
from __future__ import annotations

import logging
import time

from flask import current_app
from limits import parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from prometheus_client import Counter

from webapp.errors import RateLimited

log = logging.getLogger("webapp.ratelimit")
REJECTIONS = Counter("delta_rate_limit_rejections_total", "Requests refused by a rate limit", ["limit"])

# setting name → (default, what it keys on)
LIMITS = {
    "RATELIMIT_DEFAULT": ("600/minute", "user id, else IP: one budget for every request"),
    "RATELIMIT_LOGIN_IP": ("20/minute", "IP: login attempts"),
    "RATELIMIT_LOGIN_EMAIL": ("10/minute", "email: login attempts"),
    "RATELIMIT_LOGIN_FAILURES": ("10/15 minutes", "account: failed logins (then locked for the window)"),
    "RATELIMIT_SIGNUP_IP": ("20/hour", "IP: sign-ups"),
    "RATELIMIT_PASSWORD_RESET_IP": ("10/hour", "IP: password-reset requests"),
    "RATELIMIT_MFA": ("5/15 minutes", "account: wrong two-factor codes (then locked for the window)"),
}
IP_LIMITS = {"RATELIMIT_LOGIN_IP", "RATELIMIT_SIGNUP_IP", "RATELIMIT_PASSWORD_RESET_IP"}
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class Guard:
    """Named limits in the shared storage, with a per-process fallback when it is down."""

    def __init__(self, config, storage_uri: str):
        self.enabled = config["RATELIMIT_ENABLED"]
        self.exempt_loopback = config["RATELIMIT_EXEMPT_LOOPBACK"]
        self.items = {name: parse(config[name]) for name in LIMITS}
        options = {"socket_connect_timeout": 1, "socket_timeout": 1} if storage_uri.startswith("redis") else {}
        self.storage = storage_from_string(storage_uri, **options)
        self.strategy = FixedWindowRateLimiter(self.storage)
        self.fallback = FixedWindowRateLimiter(MemoryStorage())

    def _run(self, method: str, *args, **kwargs):
        try:
            return getattr(self.strategy, method)(*args, **kwargs)
        except Exception as exc:  # storage down: count in this process instead
            log.warning("rate-limit storage unavailable (%s); using in-process limits", type(exc).__name__)
            return getattr(self.fallback, method)(*args, **kwargs)

    def _refuse(self, setting: str, key: str):
        item = self.items[setting]
        stats = self._run("get_window_stats", item, "delta:guard", setting, key)
        REJECTIONS.labels(setting.removeprefix("RATELIMIT_").lower()).inc()
        raise RateLimited("Too many attempts; try again later.",
                          retry_after=max(1, int(stats.reset_time - time.time())))

    def _applies(self, setting: str, key: str) -> bool:
        return self.enabled and not (self.exempt_loopback and setting in IP_LIMITS and key in LOOPBACK)

    def hit(self, setting: str, key: str, cost: int = 1) -> None:
        """Count one attempt; raise RateLimited when the limit is exceeded."""
        if self._applies(setting, key) and not self._run("hit", self.items[setting], "delta:guard", setting, key, cost=cost):
            self._refuse(setting, key)

    def check(self, setting: str, key: str) -> None:
        """Raise RateLimited if the limit is already used up, without counting."""
        if self._applies(setting, key) and not self._run("test", self.items[setting], "delta:guard", setting, key):
            self._refuse(setting, key)


def init_app(app, storage_uri: str) -> None:
    app.extensions["delta_guard"] = Guard(app.config, storage_uri)


def guard() -> Guard:
    return current_app.extensions["delta_guard"]
