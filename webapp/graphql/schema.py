"""The schema: each domain's Query and Mutation mixins composed, with abuse limits and caches.

One module per domain holds its types beside its resolvers (profiles, users, posts, jobs,
accounts, mfa, sessions); each imports only the ones below it (users imports profiles, posts
imports users, mfa imports accounts), and this module imports them all.

The schema is published as SDL in schema.graphql at the repository root (`make schema` writes it
from `build_schema().as_str()`; tests/test_graphql_contract.py fails while it is stale), so a
schema change shows in review as a diff of that file.
"""
from __future__ import annotations

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

from webapp.compat.strawberry import resolve_directly
from webapp.graphql.accounts import AccountMutation
from webapp.graphql.cost import Coster, NodeLimit
from webapp.graphql.errors import DeltaSchema
from webapp.graphql.jobs import JobMutation, JobQuery
from webapp.graphql.mfa import MfaMutation
from webapp.graphql.oidc import OidcMutation, OidcQuery
from webapp.graphql.posts import DIRECT_RESOLVERS, PostMutation, PostQuery
from webapp.graphql.profiles import ProfileMutation
from webapp.graphql.sessions import SessionMutation, SessionQuery
from webapp.graphql.subscriptions import Subscription
from webapp.graphql.tokens import TokenMutation, TokenQuery
from webapp.graphql.users import UserMutation, UserQuery
from webapp.media.images import THUMBNAIL_SIZES
from webapp.mfa.codes import RECOVERY_CODE_COUNT
from webapp.replicas.graphql import ReadsFromReplicas

# Lists without a `limit` argument whose length is known, for the cost count (else: the cap).
LIST_SIZES = {("Profile", "avatarThumbnails"): len(THUMBNAIL_SIZES),
              ("TotpConfirmation", "recoveryCodes"): RECOVERY_CODE_COUNT}


@strawberry.type
class Query(JobQuery, PostQuery, UserQuery, SessionQuery, TokenQuery, OidcQuery):
    pass


@strawberry.type
class Mutation(JobMutation, AccountMutation, MfaMutation, PostMutation, ProfileMutation, UserMutation,
               SessionMutation, TokenMutation, OidcMutation):
    pass


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
        # A query document only reads: outside a transaction (webapp/db.py), or on a replica (webapp/replicas).
        ReadsFromReplicas,
    ]
    config = StrawberryConfig(disable_field_suggestions=production)
    schema = DeltaSchema(query=Query, mutation=Mutation, subscription=Subscription, production=production,
                         extensions=extensions, config=config)
    resolve_directly(schema, DIRECT_RESOLVERS)  # the fields a list repeats, without strawberry's wrapper
    schema.coster = Coster(schema.as_str(), max_items=LIST_SIZES, max_tokens=max_tokens)
    schema.max_nodes = max_nodes
    return schema
