"""GraphQL single sign-on: the provider names, and the one-time code of a finished sign-in swapped for tokens.

The sign-in itself is a browser walking redirects (REST `/api/v1/auth/oidc/{provider}/authorize`
and the provider's callback), which GraphQL cannot carry: an app starts it there and ends it here
or at REST `exchangeOidcCode`, through the same service.
"""
from __future__ import annotations

import strawberry
from strawberry.types import Info

from webapp.extensions import db
from webapp.graphql.accounts import LoginResult
from webapp.oidc import services


@strawberry.type
class OidcQuery:
    @strawberry.field(description="The configured single sign-on providers, for /api/v1/auth/oidc/{provider}/authorize.")
    def oidc_providers(self) -> list[str]:
        return services.provider_names()


@strawberry.type
class OidcMutation:
    @strawberry.mutation(description="Swap the one-time code a finished sign-in left on the app's redirect_uri "
                                     "(single use, 60 seconds) for what login answers.")
    def exchange_oidc_code(self, info: Info, code: str) -> LoginResult:
        return LoginResult(**services.exchange(db.session, code, **info.context.client_facts))
