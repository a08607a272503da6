"""GraphQL object and input types, built from the same views the REST door returns."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Optional

import strawberry
from strawberry.types import Info

if TYPE_CHECKING:
    from webapp.graphql.posts import Post


@strawberry.type
class AvatarThumbnail:
    size: int
    url: str


@strawberry.type
class Profile:
    first_name: str
    last_name: str
    bio: str
    avatar_url: Optional[str]
    avatar_thumbnails: list[AvatarThumbnail] = strawberry.field(default_factory=list)

    @classmethod
    def from_view(cls, view: dict) -> "Profile":
        thumbnails = [AvatarThumbnail(**item) for item in view.get("avatar_thumbnails", [])]
        return cls(**{**view, "avatar_thumbnails": thumbnails})


@strawberry.type
class User:
    id: int
    name: str
    role: str
    created_at: datetime
    profile: Profile
    email: Optional[str] = strawberry.field(default=None, description="Null unless the viewer is this user or an admin.")
    is_active: Optional[bool] = None
    email_verified: Optional[datetime] = None
    updated_at: Optional[datetime] = None

    @strawberry.field(description="Newest first; drafts only for their author and admins; limit capped at 100.")
    def posts(self, info: Info, limit: int = 20) -> list[Annotated["Post", strawberry.lazy("webapp.graphql.posts")]]:
        from webapp.graphql.posts import user_posts

        return user_posts(info, self.id, limit)

    @classmethod
    def from_view(cls, view: dict) -> "User":
        return cls(**{**view, "profile": Profile.from_view(view["profile"])})


@strawberry.type
class TokenPair:
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


@strawberry.input
class CreateUserInput:
    name: str
    email: str
    password: str


class PartialInput:
    """An update input whose fields may be left out: `changes()` is what the client sent."""

    def changes(self) -> dict:
        """Only the fields the client sent, as the service's `changes` mapping."""
        return {key: value for key, value in vars(self).items() if value is not strawberry.UNSET}


@strawberry.input
class UpdateUserInput(PartialInput):
    name: Optional[str] = strawberry.UNSET
    email: Optional[str] = strawberry.UNSET
    role: Optional[str] = strawberry.UNSET
    is_active: Optional[bool] = strawberry.UNSET


@strawberry.type
class Session:
    """A signed-in session: one refresh-token family."""

    id: str
    created_at: datetime
    last_used_at: datetime
    user_agent: str
    ip: str
    current: bool
