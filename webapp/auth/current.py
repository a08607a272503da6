"""Who is asking: the signed-in user of this request, from the token both doors accept."""
from __future__ import annotations

from flask_jwt_extended import get_current_user, get_jwt, verify_jwt_in_request


def optional_viewer():
    """The signed-in user when a token came with the request, else None; a bad token still raises.

    REST lets the raise become a 401 (flask-jwt-extended's handlers); GraphQL's context keeps it
    as `auth_error` and raises UNAUTHENTICATED in the resolver that asks (webapp/graphql/context.py).
    """
    verify_jwt_in_request(optional=True)
    return get_current_user() if get_jwt() else None
