"""GraphQL personal access tokens: the caller's (and, for admins, anyone's) — the same services as REST."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Optional

import strawberry
from strawberry.types import Info

from webapp.auth.permissions import SCOPES
from webapp.extensions import db
from webapp.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, clamp
from webapp.pagination import skip as checked_skip
from webapp.pats import services as pats

TokenScope = strawberry.enum(Enum("TokenScope", [(scope, scope) for scope in SCOPES]),
                             description="`read`: reads only, every write is FORBIDDEN; `write`: writes as the user.")


@strawberry.type(description="A personal access token as listed: never its secret.")
class PersonalAccessToken:
    id: int
    name: str
    scopes: list[TokenScope]
    prefix: str = strawberry.field(description="The token's public start, to tell tokens apart.")
    created_at: datetime
    expires_at: datetime
    last_used_at: Optional[datetime] = strawberry.field(description="At most once a minute; null until used.")

    @classmethod
    def from_view(cls, view: dict, **extra) -> "PersonalAccessToken":
        return cls(**{**view, "scopes": [TokenScope(scope) for scope in view["scopes"]]}, **extra)


@strawberry.type(description="A new token: `token` is shown this once; send it as `Authorization: Bearer …`.")
class NewPersonalAccessToken(PersonalAccessToken):
    token: str


@strawberry.input
class CreateTokenInput:
    name: str
    scopes: list[TokenScope]
    expires_in_days: Optional[int] = strawberry.field(
        default=None, description="Days until it expires: 30 when left out, at most PAT_MAX_DAYS (365 by default).")


@strawberry.type
class TokenQuery:
    @strawberry.field(description="The caller's personal access tokens, newest first; limit is capped at "
                                  f"{MAX_PAGE_SIZE}.")
    def my_tokens(self, info: Info, skip: int = 0, limit: int = DEFAULT_PAGE_SIZE) -> list[PersonalAccessToken]:
        viewer = info.context.require_viewer()
        return _page(viewer, viewer.id, skip, limit)

    @strawberry.field(description="A user's personal access tokens (the user themself or an admin; anyone "
                                  f"else: NOT_FOUND); limit is capped at {MAX_PAGE_SIZE}.")
    def tokens(self, info: Info, user_id: int, skip: int = 0,
               limit: int = DEFAULT_PAGE_SIZE) -> list[PersonalAccessToken]:
        return _page(info.context.require_viewer(), user_id, skip, limit)


@strawberry.type
class TokenMutation:
    @strawberry.mutation(description="Make a personal access token (from a signed-in session only).")
    def create_token(self, info: Info, input: CreateTokenInput) -> NewPersonalAccessToken:
        viewer = info.context.require_viewer()
        token, plaintext = pats.create_token(db.session, viewer, name=input.name,
                                             scopes=[scope.value for scope in input.scopes],
                                             expires_in_days=input.expires_in_days)
        return NewPersonalAccessToken.from_view(pats.token_view(token), token=plaintext)

    @strawberry.mutation(description="Revoke a token at once, on every host: the caller's, or with `userId` "
                                     "(admins) anyone's.")
    def revoke_token(self, info: Info, id: int, user_id: Optional[int] = None) -> bool:
        viewer = info.context.require_viewer()
        pats.revoke_token(db.session, viewer, viewer.id if user_id is None else user_id, id)
        return True


def _page(viewer, user_id: int, skip: int, limit: int) -> list[PersonalAccessToken]:
    page = pats.list_tokens(db.session, viewer, user_id, offset=checked_skip(skip), limit=clamp(limit))
    return [PersonalAccessToken.from_view(pats.token_view(token)) for token in page.items]
