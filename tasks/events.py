"""Realtime events with Redis (webapp/events): relay what a commit could not hand over, and trim the streams."""
from __future__ import annotations

from celery import shared_task
from flask import current_app

from webapp.events import relay

RELAY = "delta.events.relay"


@shared_task(name=RELAY)
def relay_events() -> dict:
    """Beat, every EVENTS_RELAY_SECONDS: a no-op in the embedded default, where the table is the store."""
    relayed = relay.relay() if relay.uses_redis(current_app.config) else 0
    return {"relayed": relayed, "trimmed": relay.trim() if relay.trim_due() else 0}
