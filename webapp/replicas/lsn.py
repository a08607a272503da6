"""Where each writer's last commit is in the WAL, kept in Redis so every host sees it.

Keys (values are WAL positions as integers, only ever raised, each with a TTL a bit longer than
REPLICA_MAX_LAG_SECONDS, after which every replica still in use has replayed them):
- `delta:lsn:user:<id>`: the last commit of a signed-in user's requests;
- `delta:lsn:ip:<address>`: the last commit of an anonymous request (sign-up, login) from there;
- `delta:lsn:invalidated`: the last commit that bumped a cache namespace (webapp/caching.py).
A reader needs a replica at or past the larger of its user's and its address's positions.
"""
from __future__ import annotations

import logging

import redis

log = logging.getLogger("webapp.replicas")

INVALIDATED = "delta:lsn:invalidated"
# SET each key to ARGV[1] unless it already holds a later position; refresh the TTL either way.
RAISE = """
for _, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if (not held) or tonumber(held) < tonumber(ARGV[1]) then
    redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
  else
    redis.call('EXPIRE', key, ARGV[2])
  end
end
return 1
"""


def user_key(user_id) -> str:
    return f"delta:lsn:user:{user_id}"


def address_key(address: str) -> str:
    return f"delta:lsn:ip:{address}"


class LsnStore:
    def __init__(self, redis_url: str, ttl: int):
        self.client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.ttl = ttl
        self._raise = self.client.register_script(RAISE)

    def needed(self, keys: list[str]) -> int | None:
        """The latest position among `keys` (0: none recorded); None when Redis cannot say."""
        try:
            values = self.client.mget(keys)
        except redis.RedisError as exc:
            log.warning("read-your-writes positions unavailable (%s): reading from the primary",
                        type(exc).__name__)
            return None
        return max((int(value) for value in values if value is not None), default=0)

    def record(self, keys: list[str], position: int) -> None:
        try:
            self._raise(keys=keys, args=[position, self.ttl])
        except redis.RedisError as exc:
            # The write is committed; without its position its writer may read a replica that
            # has not replayed it yet, for at most the lag the monitor allows.
            log.error("could not record a write's WAL position (%s)", type(exc).__name__)

    def invalidated_at(self) -> int | None:
        """The position of the last cache invalidation (0: none kept); None when Redis cannot say."""
        try:
            value = self.client.get(INVALIDATED)
        except redis.RedisError:
            return None
        return int(value) if value is not None else 0
