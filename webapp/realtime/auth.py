"""Who is on the other end of a stream: the bearer token checked exactly as the Flask doors check it.

The check runs the GraphQL door's context builder inside a Flask request context made from the
stream's Authorization header (an access token or a personal access token), so a revoked or
expired session, an inactive user or a bad signature is refused here as on every HTTP request. Services are sync (SQLAlchemy, the
Flask app context): `call` runs them in a worker thread and releases the session afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from anyio import to_thread
from sqlalchemy.exc import OperationalError

from webapp.auth import current
from webapp.errors import Unauthenticated, Unavailable


@dataclass(frozen=True)
class Principal:
    """The signed-in user of a stream, its session and when its access token expires (epoch seconds)."""

    user: object
    session_id: str | None
    expires_at: float | None


def bearer_of(value: object) -> str | None:
    """The `Authorization` value of a header or a connection_init payload, when it is a string."""
    return value.strip() or None if isinstance(value, str) else None


def _check(app, authorization: str) -> Principal:
    from webapp.extensions import db
    from webapp.graphql.context import build_context

    with app.test_request_context("/api/v1/events", headers={"Authorization": authorization}) as ctx:
        try:
            context = build_context(ctx.request)
            expires = current.expires_at() if context.viewer is not None else None
        except OperationalError:  # the database is down: a 503 / close 1013, not a crash
            raise Unavailable() from None
        finally:
            db.session.remove()
    if context.viewer is None:
        raise Unauthenticated(context.auth_error or "Invalid token.")
    token_id = getattr(context.viewer, "token_id", None)  # a personal access token: revoked by its id
    return Principal(context.viewer, context.session_id or (f"pat:{token_id}" if token_id else None), expires)


async def authenticate(app, authorization: str | None) -> Principal | None:
    """The principal of a token, None without one; Unauthenticated when the token is refused."""
    if authorization is None:
        return None
    return await to_thread.run_sync(_check, app, authorization)


def _in_app(app, fn, args):
    from webapp.extensions import db

    with app.app_context():
        try:
            return fn(db.session, *args)
        except OperationalError:  # the database is down: a 503 / SERVICE_UNAVAILABLE, not a crash
            raise Unavailable() from None
        finally:
            db.session.remove()


async def call(app, fn, *args):
    """`fn(session, *args)` in a worker thread, inside the app context, the session released after."""
    return await to_thread.run_sync(partial(_in_app, app, fn, args))
