"""flask-limiter (setup.cfg: <4.2): the per-request check taken the short way, limits resolved once.

Replaces:
- `Limiter._check_request_limit(callable_name, in_middleware)`, the before-request hook
  flask-limiter registers in `init_app`: `DeltaLimiter` counts a request whose limits are all
  plain straight through the strategy; reads `_storage_dead`, `_headers_enabled`, `_meta_limits`,
  `_request_filters`, `_marked_for_limiting`, `_key_prefix` and `limit_manager` to know when it may.
- `LimitManager.resolve_limits` and `exemption_scope`, wrapped in a cache (`resolve_once`).
- `LimitManager.set_default_limits([])` (`drop_default_limits`): flask-limiter also reads
  RATELIMIT_DEFAULT from the app config as a per-endpoint default limit; dropped, or every
  request would be counted twice, once per endpoint.
Measured gain (`make bench-instructions`, per signed-in `/users/me`): resolving once −0.30 M
instructions, the short path −0.23 M more (README, Performance); the stock check cost ~1 M.
"""
from __future__ import annotations

from functools import lru_cache

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_qualified_name
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter


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


def resolve_once(limiter: Limiter) -> None:
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


def drop_default_limits(limiter: Limiter) -> None:
    """No per-endpoint default limit: RATELIMIT_DEFAULT is the application limit alone."""
    limiter.limit_manager.set_default_limits([])


def count_in_memory(limiter: Limiter) -> None:
    """Count in this process instead of the configured storage (bench/instructions.py prices the
    Redis round trip with it)."""
    limiter._storage = MemoryStorage()
    limiter._limiter = FixedWindowRateLimiter(limiter._storage)
