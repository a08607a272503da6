"""Small pieces every REST blueprint uses: the auth decorator and request facts."""
from __future__ import annotations

from flask import request
from flask_jwt_extended import get_current_user, get_jwt, jwt_required

BEARER = [{"bearerAuth": []}]


def authenticated(blp):
    """`@authenticated(blp)`: require an access token and mark the operation in OpenAPI."""
    def decorator(func):
        return blp.doc(security=BEARER)(jwt_required()(func))
    return decorator


def viewer():
    """The signed-in user of this request (loaded with the token check)."""
    return get_current_user()


def session_id() -> str:
    return get_jwt()["sid"]


def client_facts() -> dict:
    return {"user_agent": request.headers.get("User-Agent", ""), "ip": request.remote_addr or ""}
