"""The configured OpenID providers, each an Authlib client that finds its endpoints by discovery.

OIDC_PROVIDERS names them (conf/oidc.py checks the list at start-up). A provider's client is
Authlib's own OAuth 2.0 + OpenID machinery over `requests` (no Flask session: the flow's state
is kept in the database by webapp/oidc/services.py): it builds the authorization URL with PKCE
S256 and a nonce, swaps the code at the token endpoint, and verifies the ID token (JWKS
signature, `iss`, `aud`, `exp`, `nonce`). Each process keeps a client — with the discovery
document and keys it fetched — for DISCOVERY_TTL seconds; a key id missing from the cached key
set makes Authlib fetch the keys again at once (a provider rotating its keys).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import BaseApp, OAuth2Mixin, OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session
from joserfc.errors import JoseError

SCOPE = "openid email profile"
DISCOVERY_TTL = 3600.0  # seconds a process trusts a discovery document and key set
HTTP_TIMEOUT = 10  # seconds for each back-channel request to a provider


class ProviderFailed(Exception):
    """The provider could not be reached, answered an error, or sent something that does not verify."""


# What a back-channel exchange can raise: the network, a refusal (OAuthError), a token that does
# not verify (joserfc), a malformed answer (ValueError from JSON, KeyError from a missing field).
FAILURES = (requests.RequestException, AuthlibBaseError, JoseError, ValueError, KeyError, RuntimeError,
            ProviderFailed)


@dataclass(frozen=True)
class Provider:
    name: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)


def configured(config) -> list[Provider]:
    return [Provider(**item) for item in config["OIDC_PROVIDERS"]]


def find(config, name: str) -> Provider | None:
    return next((provider for provider in configured(config) if provider.name == name), None)


class ProviderClient(OAuth2Mixin, OpenIDMixin, BaseApp):
    """Authlib's client for one provider, on `requests` with timeouts.

    Composed from Authlib's public mixins as its Flask client is (`FlaskOAuth2App`), without the
    Flask part, which keeps the state in a cookie session. No framework: Delta never keeps the
    provider's tokens, so there is no refreshed token to hand one.
    """

    client_cls = OAuth2Session

    def __init__(self, provider: Provider):
        super().__init__(
            framework=None, name=provider.name, client_id=provider.client_id,
            client_secret=provider.client_secret,
            server_metadata_url=f"{provider.issuer.rstrip('/')}/.well-known/openid-configuration",
            client_kwargs={"scope": SCOPE, "code_challenge_method": "S256", "default_timeout": HTTP_TIMEOUT},
        )
        self.issuer = provider.issuer
        self.loaded_at = time.monotonic()

    def load_server_metadata(self) -> dict:
        """Discovery, refusing a document that names another issuer (OpenID Discovery 1.0, 4.3)."""
        metadata = super().load_server_metadata()
        if metadata.get("issuer") != self.issuer:
            self.server_metadata.pop("_loaded_at", None)  # ask again next time
            raise ProviderFailed("the discovery document names another issuer")
        return metadata


_clients: dict[Provider, ProviderClient] = {}


def client(provider: Provider) -> ProviderClient:
    """This process's client for `provider`, made anew once its discovery is DISCOVERY_TTL old."""
    found = _clients.get(provider)
    if found is None or time.monotonic() - found.loaded_at > DISCOVERY_TTL:
        found = _clients[provider] = ProviderClient(provider)
    return found
