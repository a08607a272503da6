"""The realtime process's Prometheus metrics: what an operator watches to scale it apart from gunicorn."""
from __future__ import annotations

import time
from functools import cache

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("delta_realtime_connections", "Open realtime connections", ["protocol"])
REFUSED = Counter("delta_realtime_connections_refused_total", "Realtime connections refused",
                  ["protocol", "reason"])
CLOSED = Counter("delta_realtime_connections_closed_total", "Realtime connections closed by the server",
                 ["protocol", "reason"])
DELIVERED = Counter("delta_realtime_events_delivered_total", "Events sent to clients", ["protocol", "type"])
LAG = Histogram("delta_realtime_delivery_lag_seconds", "From an event's publication to its sending",
                ["protocol"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def delivered(protocol: str, event) -> None:
    """Count an event handed to a client, and its lag from the commit of its write (`event.at`)."""
    _delivered(protocol, event.type).inc()
    if event.at:
        _lag(protocol).observe(max(0.0, time.time() - event.at))


@cache
def _delivered(protocol: str, event_type: str):
    return DELIVERED.labels(protocol, event_type)  # a label lookup per delivery costs more than the count


@cache
def _lag(protocol: str):
    return LAG.labels(protocol)
