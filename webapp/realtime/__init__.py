"""The realtime process: GraphQL subscriptions over WebSocket and Server-Sent Events (PRODUCT.md "Realtime").

A third door beside REST and GraphQL-over-HTTP, served by uvicorn (`make realtime`,
`webapp.realtime.asgi:app`) apart from gunicorn, because a sync gthread worker cannot hold
thousands of open connections. It builds the same Flask app (create_app) for its settings and
services, and never writes: events come from committed writes through webapp.events'
EventFeed (one reader per process, fanned out to every stream of the process).

- asgi.py: the Starlette app: `/graphql` (WebSocket, graphql-transport-ws), `/api/v1/events`
  (SSE), `/health`, `/metrics`; the feed and the session watcher live with the app (lifespan).
- websocket.py: strawberry's ASGI view with Delta's context, token check and limits.
- sse.py: the event stream endpoint.
- auth.py: a bearer token → the principal, checked as the Flask door checks it; the services
  run in a worker thread inside the Flask app context.
- connections.py: open connections per user (per IP when anonymous), closed on logout,
  session revocation and token expiry.
- metrics.py: connections, refusals, events delivered, delivery lag.
"""
