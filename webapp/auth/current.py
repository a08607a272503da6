"""Who is asking: the signed-in user of this request, from the bearer token both doors accept.

Two kinds of bearer token, told apart by their prefix before any JWT decoding: a personal access
token (`dlt_pat_…`, webapp/pats/principal.py) and an access token (a JWT naming a session,
checked by flask-jwt-extended with the loaders in webapp/auth/tokens.py). Either way one
statement loads the live principal, kept on `g` as `delta_principal` for the request.
"""
from __future__ import annotations

from functools import wraps

from flask import g, request
from flask_jwt_extended import get_jwt, verify_jwt_in_request

from webapp.errors import Unauthenticated
from webapp.pats.principal import PREFIX, authenticate

PAT_HEADER = f"Bearer {PREFIX}"


def presented_pat() -> str | None:
    """The personal access token sent as this request's bearer token, if that is what was sent."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith(PAT_HEADER) else None


def pat_principal(token: str):
    """The principal of the request's personal access token, looked up once per request.

    The rate limiter asks first (to count the request against the user); the view's check then
    reuses the answer, a refusal included.
    """
    outcome = g.get("delta_pat")
    if outcome is None:
        try:
            outcome = g.delta_pat = (authenticate(token), None)
        except Unauthenticated as exc:
            outcome = g.delta_pat = (None, exc)
    principal, refusal = outcome
    if refusal is not None:
        raise refusal
    return principal


def verify_request(optional: bool = False) -> None:
    """Check the request's bearer token and keep its principal; a bad token raises, none at all
    raises unless `optional`. REST lets the raise become a 401; GraphQL keeps it as the context's
    `auth_error` (webapp/graphql/context.py)."""
    token = presented_pat()
    if token is None:
        verify_jwt_in_request(optional=optional)  # its blocklist loader sets g.delta_principal
        return
    g.delta_principal = pat_principal(token)


def signed_in(view):
    """Decorator: the view runs only for a request with a valid bearer token of either kind."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        verify_request()
        return view(*args, **kwargs)
    return wrapper


def viewer():
    """The principal of a request whose token was verified, else None."""
    return g.get("delta_principal")


def optional_viewer():
    """The signed-in user when a token came with the request, else None; a bad token still raises."""
    verify_request(optional=True)
    return viewer()


def expires_at() -> float | None:
    """When the request's verified token stops working, in epoch seconds (a stream closes then)."""
    if "delta_pat" in g:
        principal = viewer()
        return principal.token_expires_at.timestamp() if principal is not None else None
    return get_jwt().get("exp")


def session_id() -> str | None:
    """The session of the request's access token; None for a personal access token, which has none."""
    return None if "delta_pat" in g else get_jwt().get("sid")
