"""GraphQL profiles: the Profile type and its edit — the same services as REST /users/{id}/profile."""
from __future__ import annotations

from typing import Optional

import strawberry
from strawberry.types import Info

from webapp.extensions import db
from webapp.graphql.common import PartialInput
from webapp.profiles import services as profiles
from webapp.users import services as users


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

    @strawberry.field(description="The avatar URL, same as avatarUrl (the original design's name).")
    def avatar(self) -> Optional[str]:
        return self.avatar_url

    @classmethod
    def from_view(cls, view: dict) -> "Profile":
        thumbnails = [AvatarThumbnail(**item) for item in view.get("avatar_thumbnails", [])]
        return cls(**{**view, "avatar_thumbnails": thumbnails})


@strawberry.input
class UpdateProfileInput(PartialInput):
    first_name: Optional[str] = strawberry.UNSET
    last_name: Optional[str] = strawberry.UNSET
    bio: Optional[str] = strawberry.UNSET


@strawberry.type
class ProfileMutation:
    @strawberry.mutation(description="Change first name, last name or bio (the user themself or an admin).")
    def update_profile(self, info: Info, user_id: int, input: UpdateProfileInput) -> Profile:
        viewer = info.context.require_viewer()
        profile = profiles.update_profile(db.session, viewer, users.get_user(db.session, user_id), input.changes())
        return Profile.from_view(users.profile_view(profile))
