"""Realtime events: written with the write that causes them, relayed after its commit, read by one reader per process.

How the pieces fit (PRODUCT.md "Realtime"; issue 19):

- Write side (publish.py): services call `publish(topic, type, subject)`; the event is a row of
  `events` inserted in the same transaction, rendered at commit by the renderer the REST door
  registered (`register_renderer(Post, ...)`), so `data` is the REST resource's JSON. A rolled-back
  write emits nothing. Event rows are numbered in commit order (an advisory lock on PostgreSQL).
  Topics: `posts` / `post.published` (a post as it becomes visible to everyone), `jobs/{id}` /
  `job.progress` (every change of a job's status or progress), and the internal `sessions` /
  `session.revoked` ({"sid", "user_id"}: that session's streams are to be closed at once).
- Store: in the embedded default (no REDIS_URL) the table itself, event id = row id. With Redis,
  relay.py appends committed rows to one stream per topic (exactly once: streams.ADD) and deletes
  them; beat retries what a commit could not hand over. Either store keeps, per topic, at least
  EVENTS_KEEP_SECONDS (1 h) of events AND the last EVENTS_KEEP_COUNT (10,000).
- Read side (feed.py): `EventFeed`, one per realtime process, with one reader (an XREAD over the
  subscribed topics, or a poll of the table) fanning out to bounded per-subscriber queues;
  `subscribe(topic, after=last_id)` gives the retained events after `last_id`, then live ones,
  with no gap and no duplicate.
"""
from webapp.events.publish import publish, register_renderer

__all__ = ["publish", "register_renderer"]
