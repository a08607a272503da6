"""The Redis side of the event store: one stream per topic, and the two scripts that write and trim it.

- `delta:events:stream:<topic>`: XADD assigns each event its id (`<ms>-<seq>`, monotonic per
  stream); fields `type`, `data` (JSON) and `at` (when the write committed, epoch seconds).
- `ADD` appends an event only if `SET NX` of its dedupe key (the row's id and creation time)
  succeeds, in one atomic script: a relay that dies between XADD and deleting the row, and a
  second relay racing it, both find the key and add nothing. Dedupe keys live DEDUPE_SECONDS.
- `TRIM` keeps every event younger than the age limit AND the newest `count` of the topic:
  XTRIM MINID with the lower of the two boundaries. A stream idle for EVENTS_TOPIC_IDLE_HOURS
  expires whole (each XADD renews its TTL).
- `delta:events:topics`: the set of topic names, so the trim can visit every stream.
"""
from __future__ import annotations

import re

from flask import current_app
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

PREFIX = "delta:events:stream:"
TOPICS = "delta:events:topics"
DEDUPE = "delta:events:relayed:"
DEDUPE_SECONDS = 2 * 24 * 3600
STREAM_ID = re.compile(r"^(\d{1,19})-(\d{1,19})$")

ADD = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[4]) then
  local id = redis.call('XADD', KEYS[1], '*', 'type', ARGV[1], 'data', ARGV[2], 'at', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('SADD', KEYS[3], ARGV[6])
  return id
end
return false
"""

TRIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local keep = tonumber(ARGV[1])
if redis.call('XLEN', KEYS[1]) <= keep then return 0 end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', keep)
local boundary = newest[#newest][1]
local boundary_ms = tonumber(string.match(boundary, '^(%d+)-'))
local minid = boundary
if tonumber(ARGV[2]) < boundary_ms then minid = ARGV[2] .. '-0' end
return redis.call('XTRIM', KEYS[1], 'MINID', minid)
"""


def stream_key(topic: str) -> str:
    return PREFIX + topic


def dedupe_key(row_id: int, created_at) -> str:
    """Unique to the row even if a restored database hands its id out again."""
    return f"{DEDUPE}{row_id}:{created_at.timestamp():.6f}"


def parse_id(value: str) -> tuple[int, int]:
    """A stream id as a comparable (ms, seq); ValueError when it is not one."""
    match = STREAM_ID.match(value or "")
    if not match:
        raise ValueError(f"not a stream id: {value!r}")
    return int(match[1]), int(match[2])


def client() -> Redis:
    """This app's synchronous Redis for the relay: short timeouts, so a dead Redis never holds a request.

    One immediate retry (a pooled connection a restarted Redis closed), not redis-py's three with
    backoff: the rows wait in the table, and the relay backs off on its own.
    """
    redis = current_app.extensions.get("events_redis")
    if redis is None:
        redis = current_app.extensions["events_redis"] = Redis.from_url(
            current_app.config["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 1))
    return redis


def append(redis: Redis, events: list[dict], *, ttl: int) -> int:
    """Append events (topic, type, data as JSON, at, dedupe) in order, in one round trip; how many were new.

    Raises RedisError when Redis fails: some may be on their streams then, which the dedupe keys
    make harmless when the same events are appended again.
    """
    script = redis.register_script(ADD)
    pipe = redis.pipeline(transaction=False)
    for event in events:
        script(keys=[stream_key(event["topic"]), event["dedupe"], TOPICS], client=pipe,
               args=[event["type"], event["data"], f"{event['at']:.6f}", DEDUPE_SECONDS, ttl, event["topic"]])
    return sum(1 for added in pipe.execute() if added)


def trim(redis: Redis, *, keep_count: int, keep_after_ms: int) -> int:
    """Trim every topic's stream; forget topics whose stream expired. Returns entries removed."""
    script = redis.register_script(TRIM)
    removed, cursor = 0, 0
    while True:  # a page of topics per round trip
        cursor, page = redis.sscan(TOPICS, cursor, count=500)
        pipe = redis.pipeline(transaction=False)
        for topic in page:
            script(keys=[stream_key(topic.decode() if isinstance(topic, bytes) else topic)],
                   args=[keep_count, keep_after_ms], client=pipe)
        results = pipe.execute() if page else []
        gone = [topic for topic, result in zip(page, results) if result == -1]
        if gone:
            redis.srem(TOPICS, *gone)
        removed += sum(result for result in results if result > 0)
        if cursor == 0:
            return removed
