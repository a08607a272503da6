"""Per-request GraphQL context: who is asking, resolved once with the REST door's token check."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from flask import Request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

from webapp.auth.current import optional_viewer, session_id
from webapp.errors import Unauthenticated


@dataclass
class Context:
    request: Request
    viewer: object | None = None
    session_id: str | None = None
    auth_error: str | None = None

    @property
    def client_facts(self) -> dict:
        return {"user_agent": self.request.headers.get("User-Agent", ""),
                "ip": self.request.remote_addr or ""}

    @cached_property
    def loaders(self):
        """This request's batch loaders (see webapp/graphql/loaders.py)."""
        from webapp.extensions import db
        from webapp.graphql.loaders import Loaders

        return Loaders(db.session, self.viewer)

    def require_viewer(self):
        """The signed-in user, or UNAUTHENTICATED (with the token's problem when there was one)."""
        if self.viewer is None:
            raise Unauthenticated(self.auth_error or "Authentication required.")
        return self.viewer

    def viewer_or_none(self):
        """`optional_viewer` for resolvers that serve anonymous callers too: a token that was sent
        but is bad is still UNAUTHENTICATED, raised here where REST's 401 would have been."""
        if self.viewer is None and self.auth_error:
            raise Unauthenticated(self.auth_error)
        return self.viewer


def build_context(request: Request) -> Context:
    context = Context(request=request)
    try:
        context.viewer = optional_viewer()
    except Unauthenticated as exc:  # a personal access token refused (webapp/pats/principal.py)
        context.auth_error = exc.message
        return context
    except (JWTExtendedException, PyJWTError) as exc:
        context.auth_error = _describe(exc)
        return context
    if context.viewer is not None:
        context.session_id = session_id()
    return context


def _describe(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "ExpiredSignatureError":
        return "Token has expired."
    if name in {"RevokedTokenError", "UserLookupError"}:
        return "Token has been revoked."
    return "Invalid token."
