"""/api/v1/auth/oidc: single sign-on with OpenID Connect providers (webapp/oidc/services.py).

`authorize` and `callback` are legs a browser walks (302s between the app, Delta and the
provider), so they exist in REST only; the app then exchanges its one-time code through
`exchange` here or `exchangeOidcCode` in GraphQL. The callback's own URL, which is what each
provider must have registered, is built from the request (behind a proxy: `TRUSTED_PROXIES`).
"""
from __future__ import annotations

from flask import redirect, url_for
from flask.views import MethodView

from webapp.extensions import db
from webapp.oidc import services
from webapp.rest.common import Blueprint, client_facts, operation
from webapp.rest.schemas.mfa import LoginResultSchema
from webapp.rest.schemas.oidc import AuthorizeArgs, CallbackArgs, OidcExchangeSchema, OidcProvidersSchema

PREFIX = "/auth/oidc"
blp = Blueprint("oidc", __name__, description="Single sign-on with OpenID Connect providers.")

LOCATION = {"Location": {"description": "Where the browser goes next.", "schema": {"type": "string"}}}
NO_STORE = {"Cache-Control": "no-store"}


def _browser_redirect(url: str):
    response = redirect(url, 302)
    response.headers.update(NO_STORE)
    return response


def _callback_url(provider: str) -> str:
    return url_for("oidc.Callback", provider=provider, _external=True)


@blp.route("")
class Providers(MethodView):
    @operation(blp, "listOidcProviders")
    @blp.response(200, OidcProvidersSchema)
    def get(self):
        """The names of the configured sign-in providers

        Each one signs in at `/auth/oidc/{provider}/authorize`.
        """
        return {"providers": services.provider_names()}


@blp.route("/<string(maxlength=32):provider>/authorize")
class Authorize(MethodView):
    @operation(blp, "startOidcSignIn", (503, "The provider's discovery document cannot be fetched."),
               responses={302: {"description": "To the provider's sign-in page.", "headers": LOCATION}})
    @blp.arguments(AuthorizeArgs, location="query")
    def get(self, args, provider):
        """Open this in the browser to sign in with a provider

        Redirects to the provider (authorization code flow with PKCE S256, `state` and `nonce`).
        Once the user has signed in there, the browser lands on `redirect_uri` with `?code=...`
        for `exchangeOidcCode`, or with `?error=...&error_description=...` when refused
        (`access_denied`, `email_not_verified`, `account_disabled`, `invalid_id_token`, ...).
        `redirect_uri` must be exactly one of `OIDC_REDIRECT_URIS` (else 422).
        """
        url = services.start(db.session, provider, args["redirect_uri"], _callback_url(provider))
        return _browser_redirect(url)


@blp.route("/<string(maxlength=32):provider>/callback")
class Callback(MethodView):
    @operation(blp, "finishOidcSignIn", (400, "The `state` is unknown, expired or already used."),
               responses={302: {"description": "To the app's `redirect_uri`, with `code` or `error`.",
                                "headers": LOCATION}})
    @blp.arguments(CallbackArgs, location="query")
    def get(self, args, provider):
        """Where the provider sends the browser back (register this URL at the provider)

        Not called by apps: it verifies the answer, signs the user in (or up) and redirects to
        the app's `redirect_uri`.
        """
        url = services.finish(db.session, provider, _callback_url(provider), args, ip=client_facts()["ip"])
        return _browser_redirect(url)


@blp.route("/exchange")
class Exchange(MethodView):
    @operation(blp, "exchangeOidcCode", (400, "The code is invalid, expired or already used."))
    @blp.arguments(OidcExchangeSchema)
    @blp.response(200, LoginResultSchema)
    def post(self, data):
        """Swap the one-time code of a finished sign-in for tokens

        Answers what `login` answers: a new session's token pair or, for an account with
        two-factor sign-in on, `mfa_required` and an `mfa_token` for `verifyMfa` (the provider
        vouches for the first factor only). The code works once, for 60 seconds.
        """
        return services.exchange(db.session, data["code"], **client_facts())
