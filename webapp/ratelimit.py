"""Rate limits, shared by every worker and host through Redis (in-process on the embedded default).

Two layers, one storage:
- flask-limiter's application limit (RATELIMIT_DEFAULT): one budget per signed-in user (or per IP
  when anonymous) that every endpoint, GraphQL included, draws from; a GraphQL request costs what
  `_request_cost` says. (A default limit would be counted per endpoint: 600 on one route, then
  another route still answers.)
- `guard(name, key)`: named limits the services' callers check for sensitive actions — login per
  IP, per email and failed logins per account; sign-up and password reset per IP. (Verification
  resends are limited by the accounts service from the tokens it has issued: VERIFY_EMAILS_PER_HOUR.)
  Both doors call it, so GraphQL is limited exactly like REST.

In development (`make run`), per-IP limits skip loopback callers (RATELIMIT_EXEMPT_LOOPBACK): a
local client or test suite signs up and logs in far more often from 127.0.0.1 than any one real
address would; per-account and per-user limits still apply. Production never exempts it.

When Redis is unreachable both layers fall back to per-process memory: limits get looser (each
process counts alone) but never vanish, and the API keeps answering. The Limiter is built per app
(flask-limiter keeps its storage on the instance), so tests can run apps with other limits.
"""
from __future__ import annotations

import logging
import time
from functools import lru_cache

from flask import current_app, g, request
from flask_jwt_extended import decode_token
from flask_limiter import Limiter
from flask_limiter.util import get_qualified_name
from limits import parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from prometheus_client import Counter

from webapp.errors import RateLimited
from webapp.jsonio import strict_loads

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
}


def caller_key() -> str:
    """The signed-in user's id from the bearer token (signature checked, no database), else the IP."""
    cached = g.get("ratelimit_key")
    if cached:
        return cached
    key = f"ip:{request.remote_addr}"
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        try:
            key = f"user:{decode_token(header[7:].strip())['sub']}"
        except Exception:
            pass
    g.ratelimit_key = key
    return key


def document_cost(query: object, variables: object = None, operation_name: object = None) -> int:
    """What a GraphQL document is charged: 1 + nodes // 100, where nodes (capped at
    GRAPHQL_MAX_NODES) is how many objects it could return (webapp/graphql/cost.py).

    `{ me { id } }` costs 1, `{ posts(limit: 100) { id } }` 2, a document at the 10,000 limit
    101; one refused for its size is charged as one at the limit. The GraphQL door registers the
    counter in `app.extensions` (this module does not import a door); it plans each document
    text once and caches the plan, so a known document costs a dict lookup.
    """
    size = current_app.extensions.get("delta_graphql_size")
    if size is None or not isinstance(query, str):
        return 1
    nodes = size(query, variables if isinstance(variables, dict) else None,
                 operation_name if isinstance(operation_name, str) else None)
    return 1 + min(nodes, current_app.config["GRAPHQL_MAX_NODES"]) // 100


def _request_cost() -> int:
    if request.path != "/graphql":
        return 1
    if request.method == "POST":
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            return document_cost(body.get("query"), body.get("variables"), body.get("operationName"))
        return 1
    if request.method == "GET" and "query" in request.args:
        try:
            variables = strict_loads(request.args["variables"]) if request.args.get("variables") else None
        except ValueError:
            variables = None  # the view refuses it
        return document_cost(request.args["query"], variables, request.args.get("operationName"))
    return 1


def init_app(app) -> None:
    config = app.config
    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    storage_uri = config["REDIS_URL"] or "memory://"
    app.after_request(_standard_headers)  # after_request runs last-registered first: after the limiter's
    limiter = app.extensions["delta_limiter"] = DeltaLimiter(
        key_func=caller_key, app=app, application_limits=[config["RATELIMIT_DEFAULT"]],
        application_limits_cost=_request_cost, storage_uri=storage_uri, strategy="fixed-window",
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1} if config["REDIS_URL"] else {},
        headers_enabled=config["RATELIMIT_HEADERS"], in_memory_fallback_enabled=True, swallow_errors=True,
        key_prefix="delta:limit", enabled=config["RATELIMIT_ENABLED"],
        on_breach=lambda limit: REJECTIONS.labels("default").inc(),
        application_limits_exempt_when=_exempt_anonymous_loopback if config["RATELIMIT_EXEMPT_LOOPBACK"] else None,
    )
    # flask-limiter also reads RATELIMIT_DEFAULT from the app config as a per-endpoint default
    # limit: drop it, or every request would be counted twice, once per endpoint.
    limiter.limit_manager.set_default_limits([])
    for endpoint in ("health", "ready", "metrics", "vendor", "static_files"):
        if endpoint in app.view_functions:
            limiter.exempt(app.view_functions[endpoint])
    _resolve_once(limiter)
    app.extensions["delta_guard"] = Guard(config, storage_uri)


def _resolve_once(limiter: Limiter) -> None:
    """Work out once per endpoint which limits apply, instead of on every request.

    flask-limiter resolves them anew for each request (walking exemptions and blueprints and
    parsing the limit strings again), because a limit may be a callable whose value changes.
    Delta's are fixed strings and exemptions, all set in `init_app` before the first request, so
    the answer for an (endpoint, blueprint) pair never changes: 0.30 M of the ~1 M instructions
    the limiter cost per request (`make bench-instructions`). A dynamic limit or a late
    `limiter.exempt` would need this removed.
    """
    manager = limiter.limit_manager
    manager.resolve_limits = lru_cache(maxsize=1024)(manager.resolve_limits)
    manager.exemption_scope = lru_cache(maxsize=1024)(manager.exemption_scope)


class DeltaLimiter(Limiter):
    """flask-limiter, checking a request that has nothing but plain limits the short way.

    flask-limiter's per-request check is generic: it works out which limits apply and whether
    decorated, meta, conditional or per-method limits are in play, and keeps an ordered-set context
    for them; that bookkeeping cost ~0.4 M instructions per request, several times the Redis round
    trip that does the counting (`make bench-instructions`). Delta's routes carry only the
    application limit, so while the storage is healthy and headers are off, a request whose limits
    are all plain is counted straight through flask-limiter's own strategy, keys and scopes. Everything
    else takes flask-limiter's path: a decorated route, `RATELIMIT_HEADERS`, a storage error (it
    then falls back to memory) and every refusal — so a refused request is counted twice, which
    changes nothing for a client already over its limit.
    """

    def _check_request_limit(self, callable_name: str | None = None, in_middleware: bool = True) -> None:
        limits = self._plain_limits() if callable_name is None and in_middleware else None
        if limits is not None:
            endpoint, method = request.endpoint, request.method
            try:
                for lim in limits:
                    if lim.is_exempt or lim.method_exempt:
                        continue
                    key, scope = lim.key_func(), lim.scope_for(endpoint, method)
                    if key and scope and not self.limiter.hit(lim.limit, self._key_prefix, key, scope,
                                                              cost=lim.deduction_amount):
                        break  # refused: flask-limiter answers it
                else:
                    return
            except Exception:  # storage trouble: flask-limiter marks it and falls back to memory
                pass
        super()._check_request_limit(callable_name, in_middleware)

    def _plain_limits(self) -> list | None:
        """This request's limits when they are only plain ones on a healthy storage, else None.

        (Without a key prefix flask-limiter builds its keys differently: that case takes its path.)
        """
        if not (self.enabled and self.initialized) or self._storage_dead or self._headers_enabled \
                or self._meta_limits or self._request_filters or not self._key_prefix:
            return None
        endpoint = request.endpoint
        if not endpoint or endpoint.rpartition(".")[2] == "static":
            return None
        view = current_app.view_functions.get(endpoint)
        name = get_qualified_name(view) if view else ""
        marked = name in self._marked_for_limiting or self.limit_manager.has_hints(endpoint)
        limits, decorated = self.limit_manager.resolve_limits(current_app, endpoint, request.blueprint, name,
                                                              True, marked)
        if decorated or any(lim.deduct_when or lim.meta_limits for lim in limits):
            return None
        return limits


IP_LIMITS = {"RATELIMIT_LOGIN_IP", "RATELIMIT_SIGNUP_IP", "RATELIMIT_PASSWORD_RESET_IP"}
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _exempt_anonymous_loopback() -> bool:
    """Development only: an anonymous caller on this very machine is not limited per IP."""
    return caller_key().startswith("ip:") and request.remote_addr in LOOPBACK


def _standard_headers(response):
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


def guard() -> Guard:
    return current_app.extensions["delta_guard"]
