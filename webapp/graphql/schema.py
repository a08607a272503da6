"""Query and Mutation: each resolver parses, calls a service, and shapes the answer."""
from __future__ import annotations

from typing import Optional

import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from webapp.auth import services as auth_services
from webapp.extensions import db
from webapp.media.images import THUMBNAIL_SIZES
from webapp.graphql.cost import Coster, NodeLimit
from webapp.graphql.errors import DeltaSchema
from webapp.graphql.jobs import JobMutation, JobQuery
from webapp.graphql.posts import PostMutation, PostQuery
from webapp.graphql.types import CreateUserInput, Session, TokenPair, UpdateUserInput, User
from webapp.users import services as users

MAX_LIMIT = 100
# Lists without a `limit` argument whose length is known, for the cost count (else: MAX_LIMIT).
LIST_SIZES = {("Profile", "avatarThumbnails"): len(THUMBNAIL_SIZES)}


def clamp(limit: int | None, default: int = 20) -> int:
    """List sizes are capped at 100 whatever the client asks."""
    if limit is None:
        return default
    return max(0, min(int(limit), MAX_LIMIT))


def _skip(skip: int | None) -> int:
    return max(0, int(skip or 0))


@strawberry.type
class Query(JobQuery, PostQuery):
    @strawberry.field(description="The signed-in user.")
    def me(self, info: Info) -> User:
        viewer = info.context.require_viewer()
        return User.from_view(users.user_view(viewer, viewer))

    @strawberry.field
    def user(self, info: Info, id: int) -> Optional[User]:
        viewer = info.context.require_viewer()
        return User.from_view(users.user_view(viewer, users.user_card(db.session, id)))

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

    @strawberry.field(description="The caller's signed-in sessions (one per refresh family), newest first.")
    def sessions(self, info: Info) -> list[Session]:
        viewer = info.context.require_viewer()
        return [Session(**row) for row in auth_services.list_sessions(db.session, viewer, info.context.session_id)]


@strawberry.type
class Mutation(JobMutation, PostMutation):
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

    @strawberry.mutation(description="Sign one of the caller's sessions out at once.")
    def revoke_session(self, info: Info, id: str) -> bool:
        viewer = info.context.require_viewer()
        auth_services.revoke_session(db.session, viewer, id)
        return True


def build_schema(*, production: bool = False, max_depth: int = 10, max_aliases: int = 30,
                 max_tokens: int = 2000, max_nodes: int = 10_000) -> strawberry.Schema:
    """The schema with abuse limits checked before execution, and parse/validation caches.

    `max_nodes` bounds how many objects a document could return (webapp/graphql/cost.py),
    checked after validation with the request's variables; `schema.coster` is also what the
    rate limiter charges by.

    The depth and alias limiters make a new rule class each time they are built; built per
    request, every validation would have new rules and miss the validation cache. Their rules
    are made once here and added by one extension, so a known document is validated once.
    """
    rules = [*QueryDepthLimiter(max_depth=max_depth).validation_rules,
             *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules]
    if production:
        rules.append(NoSchemaIntrospectionCustomRule)
    extensions = [
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        NodeLimit,  # after the validation cache: runs on a document that validated
    ]
    config = StrawberryConfig(disable_field_suggestions=production)
    schema = DeltaSchema(query=Query, mutation=Mutation, production=production, extensions=extensions,
                         config=config)
    schema.coster = Coster(schema.as_str(), max_items=LIST_SIZES, max_tokens=max_tokens)
    schema.max_nodes = max_nodes
    return schema
