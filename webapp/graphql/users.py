"""GraphQL users: the User type, the directory and account edits — the same services as REST /users.

`User.posts` refers to the Post type of webapp/graphql/posts.py, which refers back to User
for its author. The two types name each other, so one side must be late: `User.posts` names
Post through `strawberry.lazy` (resolved when schema.py builds the schema) and imports nothing
of the posts module; posts.py imports this module. Its resolver returns the post rows as they
are: strawberry reads the Post type's fields from them.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Optional

import strawberry
from strawberry.types import Info

from webapp.extensions import db
from webapp.graphql.common import PartialInput, asked, post_columns
from webapp.graphql.enums import Role
from webapp.graphql.profiles import Profile
from webapp.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, clamp
from webapp.pagination import skip as checked_skip
from webapp.users import services as users

PostType = Annotated["Post", strawberry.lazy("webapp.graphql.posts")]


@strawberry.type
class User:
    id: int
    name: str
    role: Role
    created_at: datetime
    profile: Profile
    email: Optional[str] = strawberry.field(default=None, description="Null unless the viewer is this user or an admin.")
    is_active: Optional[bool] = None
    email_verified: Optional[datetime] = None
    updated_at: Optional[datetime] = None

    @strawberry.field(description="Newest first; drafts only for their author and admins; "
                                  f"limit capped at {MAX_PAGE_SIZE}.")
    def posts(self, info: Info, limit: int = DEFAULT_PAGE_SIZE) -> list[PostType]:
        return posts_of(self, info, limit)

    @classmethod
    def from_view(cls, view: dict) -> "User":
        return cls(**{**view, "role": Role(view["role"]), "profile": Profile.from_view(view["profile"])})


def posts_of(user, info, limit: int = DEFAULT_PAGE_SIZE) -> list:
    """`User.posts`, batched over every user of the parent list (webapp/graphql/loaders.py);
    graphql-core calls it directly (schema.py, webapp/compat/strawberry.py)."""
    loaders = info.context.loaders
    return loaders.posts_of(user.id, clamp(limit), loaders.columns_of(info, lambda: post_columns(asked(info))))


def shown(context, user) -> User:
    """`user` as this request's viewer may see it, built once per request: a list of posts names
    the same few authors many times, often users the same answer lists already."""
    built = context.loaders.shown.get(user.id)
    if built is None:
        built = context.loaders.shown[user.id] = User.from_view(users.user_view(context.viewer, user))
    return built


@strawberry.input
class CreateUserInput:
    name: str
    email: str
    password: str


@strawberry.input
class UpdateUserInput(PartialInput):
    name: Optional[str] = strawberry.UNSET
    email: Optional[str] = strawberry.UNSET
    role: Optional[Role] = strawberry.UNSET
    is_active: Optional[bool] = strawberry.UNSET


@strawberry.type
class UserQuery:
    @strawberry.field(description="The signed-in user.")
    def me(self, info: Info) -> User:
        viewer = info.context.require_viewer()
        return User.from_view(users.user_view(viewer, viewer))

    @strawberry.field(description="One user; null with a NOT_FOUND error when there is none.")
    def user(self, info: Info, id: int) -> Optional[User]:
        viewer = info.context.require_viewer()
        return User.from_view(users.user_view(viewer, users.user_card(db.session, viewer, id)))

    @strawberry.field(description=f"Users in id order; limit is capped at {MAX_PAGE_SIZE}.")
    def users(self, info: Info, skip: int = 0, limit: int = DEFAULT_PAGE_SIZE) -> list[User]:
        viewer = info.context.require_viewer()
        cards = users.user_cards(db.session, viewer, offset=checked_skip(skip), limit=clamp(limit))
        info.context.loaders.saw_users(cards)
        return [shown(info.context, card) for card in cards]

    @strawberry.field(description=f"Search by name (admins: also email prefix); limit is capped at {MAX_PAGE_SIZE}.")
    def search_users(self, info: Info, query: str, limit: int = DEFAULT_PAGE_SIZE) -> list[User]:
        viewer = info.context.require_viewer()
        cards = users.user_cards(db.session, viewer, q=query, offset=0, limit=clamp(limit))
        info.context.loaders.saw_users(cards)
        return [shown(info.context, card) for card in cards]


@strawberry.type
class UserMutation:
    @strawberry.mutation(description="Sign up; a verification email is queued.")
    def create_user(self, info: Info, input: CreateUserInput) -> User:
        user = users.create_user(db.session, name=input.name, email=input.email, password=input.password,
                                 ip=info.context.client_facts["ip"])
        return User.from_view(users.user_view(user, user))

    @strawberry.mutation
    def update_user(self, info: Info, id: int, input: UpdateUserInput) -> User:
        viewer = info.context.require_viewer()
        user = users.update_user(db.session, viewer, users.get_user(db.session, id), input.changes())
        return User.from_view(users.user_view(viewer, user))

    @strawberry.mutation
    def delete_user(self, info: Info, id: int) -> bool:
        viewer = info.context.require_viewer()
        users.delete_user(db.session, viewer, users.get_user(db.session, id))
        return True
