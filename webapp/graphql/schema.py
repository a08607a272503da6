"""Query and Mutation: each resolver parses, calls a service, and shapes the answer."""
from __future__ import annotations

from typing import Optional

import strawberry
from strawberry.types import Info

from webapp.auth import services as auth_services
from webapp.extensions import db
from webapp.graphql.errors import DeltaSchema
from webapp.graphql.posts import PostMutation, PostQuery
from webapp.graphql.types import CreateUserInput, TokenPair, UpdateUserInput, User
from webapp.users import services as users

MAX_LIMIT = 100


def clamp(limit: int | None, default: int = 20) -> int:
    """List sizes are capped at 100 whatever the client asks."""
    if limit is None:
        return default
    return max(0, min(int(limit), MAX_LIMIT))


def _skip(skip: int | None) -> int:
    return max(0, int(skip or 0))


@strawberry.type
class Query(PostQuery):
    @strawberry.field(description="The signed-in user.")
    def me(self, info: Info) -> User:
        viewer = info.context.require_viewer()
        return User.from_view(users.user_view(viewer, viewer))

    @strawberry.field
    def user(self, info: Info, id: int) -> Optional[User]:
        viewer = info.context.require_viewer()
        return User.from_view(users.user_view(viewer, users.get_user(db.session, id)))

    @strawberry.field(description="Users in id order; limit is capped at 100.")
    def users(self, info: Info, skip: int = 0, limit: int = 20) -> list[User]:
        viewer = info.context.require_viewer()
        page = users.list_users(db.session, viewer, offset=_skip(skip), limit=clamp(limit))
        info.context.loaders.saw_users(page.items)
        return [User.from_view(users.user_view(viewer, user)) for user in page.items]

    @strawberry.field(description="Search by name (admins: also email prefix); limit is capped at 100.")
    def search_users(self, info: Info, query: str, limit: int = 20) -> list[User]:
        viewer = info.context.require_viewer()
        page = users.list_users(db.session, viewer, q=query, offset=0, limit=clamp(limit))
        info.context.loaders.saw_users(page.items)
        return [User.from_view(users.user_view(viewer, user)) for user in page.items]


@strawberry.type
class Mutation(PostMutation):
    @strawberry.mutation(description="Sign up; a verification email is queued.")
    def create_user(self, info: Info, input: CreateUserInput) -> User:
        user = users.create_user(db.session, name=input.name, email=input.email, password=input.password)
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

    @strawberry.mutation
    def login(self, info: Info, email: str, password: str) -> TokenPair:
        return TokenPair(**auth_services.login(db.session, email, password, **info.context.client_facts))

    @strawberry.mutation
    def refresh_token(self, info: Info, refresh_token: str) -> TokenPair:
        return TokenPair(**auth_services.refresh(db.session, refresh_token, **info.context.client_facts))

    @strawberry.mutation(description="Sign out this session: its access and refresh tokens stop working.")
    def logout(self, info: Info) -> bool:
        viewer = info.context.require_viewer()
        auth_services.logout(db.session, viewer, info.context.session_id)
        return True


def build_schema(*, production: bool = False) -> strawberry.Schema:
    return DeltaSchema(query=Query, mutation=Mutation, production=production)
