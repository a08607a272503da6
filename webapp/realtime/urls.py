"""Where clients find the realtime process: `GET /api/v1/meta`'s `streaming_url`, GraphiQL's socket."""
from __future__ import annotations


def streaming_url(config, request_host: str) -> str:
    """REALTIME_PUBLIC_URL when a proxy puts the process elsewhere, else this host on REALTIME_PORT."""
    if config["REALTIME_PUBLIC_URL"]:
        return config["REALTIME_PUBLIC_URL"].rstrip("/")
    host = request_host
    if not host.endswith("]") and ":" in host:  # drop the API's port (an IPv6 literal keeps its brackets)
        host = host.rpartition(":")[0]
    return f"http://{host}:{config['REALTIME_PORT']}"


def websocket_url(http_url: str) -> str:
    """`http(s)://…` → `ws(s)://…/graphql`."""
    scheme, rest = http_url.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/graphql"
