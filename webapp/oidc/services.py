"""Sign-in with OpenID Connect, in three steps that any host can serve.

1. `start`: remember a new authorization request (the SHA-256 of its `state`, its `nonce`, its
   PKCE verifier and the app's `redirect_uri`) and answer the provider URL to send the browser to.
2. `finish`: the provider sent the browser back. Spend the state, swap the code (with the
   verifier), have Authlib verify the ID token, then find the linked user, link an existing
   account through an email the provider says is verified, or sign a new user up. Answer the
   app's URL with a one-time `code`, or with `error` (and `error_description`) when refused.
3. `exchange`: spend that code for what a password login answers (the token pair, or the
   two-factor challenge when the user has TOTP on).
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp import validation
from webapp.auth import services as auth_services
from webapp.db import utcnow
from webapp.errors import BadToken, Invalid, NotFound, RateLimited, Unavailable
from webapp.guard import guard
from webapp.mfa import challenges as mfa_challenges
from webapp.oidc import providers
from webapp.oidc.models import OidcExchangeCode, OidcLoginState, UserIdentity
from webapp.users.models import Profile, User

log = logging.getLogger("webapp.oidc")

STATE_SECONDS = 600  # to sign in at the provider
CODE_SECONDS = 60  # for the app to exchange its code
UNKNOWN_PROVIDER = "No such sign-in provider."
STATE_SPENT = "This sign-in is unknown, expired or already finished; start again."
CODE_SPENT = "The sign-in code is invalid, expired or already used; sign in again."

# Errors a provider may send back (RFC 6749 4.1.2.1, OpenID Core 3.1.2.6), passed on to the app.
OAUTH_ERRORS = frozenset({
    "access_denied", "invalid_request", "unauthorized_client", "unsupported_response_type", "invalid_scope",
    "server_error", "temporarily_unavailable", "interaction_required", "login_required",
    "account_selection_required", "consent_required",
})


class Refused(Exception):
    """A sign-in that ends at the app's redirect_uri with `error` (an OAuth-style code) and words."""

    def __init__(self, error: str, description: str):
        super().__init__(error)
        self.error, self.description = error, description


@dataclass(frozen=True)
class Flight:
    """What the authorization request left for its callback."""

    nonce: str
    code_verifier: str
    redirect_uri: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def provider_names() -> list[str]:
    return [provider.name for provider in providers.configured(current_app.config)]


def _provider(name: str) -> providers.Provider:
    provider = providers.find(current_app.config, name)
    if provider is None:
        raise NotFound(UNKNOWN_PROVIDER)
    return provider


def start(session: Session, provider_name: str, redirect_uri: str, callback_url: str) -> str:
    """Remember a new sign-in and answer the provider's authorization URL (PKCE S256, state, nonce)."""
    provider = _provider(provider_name)
    if redirect_uri not in current_app.config["OIDC_REDIRECT_URIS"]:
        raise Invalid("Validation failed.", errors={"redirect_uri": ["Not one of the allowed redirect URIs."]})
    try:
        request = providers.client(provider).create_authorization_url(
            callback_url, state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32))  # 256 bits each
    except providers.FAILURES as exc:
        log.warning("oidc provider %s unavailable: %s", provider.name, _describe(exc))
        raise Unavailable("The sign-in provider cannot be reached; try again shortly.") from None
    now = utcnow()
    session.execute(delete(OidcLoginState).where(OidcLoginState.expires_at <= now))
    session.add(OidcLoginState(state_hash=_digest(request["state"]), provider=provider.name, nonce=request["nonce"],
                               code_verifier=request["code_verifier"], redirect_uri=redirect_uri,
                               expires_at=now + timedelta(seconds=STATE_SECONDS)))
    session.commit()
    return request["url"]


def finish(session: Session, provider_name: str, callback_url: str, params: dict, *, ip: str = "") -> str:
    """The provider's answer, turned into the app's redirect: `?code=` on success, `?error=` when refused.

    An unknown, expired or spent `state` is a BadToken (there is no app URL to send an error to).
    """
    provider = _provider(provider_name)
    flight = _spend_state(session, provider, params.get("state"))
    try:
        claims = _verified_claims(provider, flight, callback_url, params)
        user = _account_for(session, provider, claims, ip)
    except Refused as refusal:
        session.rollback()
        log.info("oidc sign-in refused: provider=%s error=%s", provider.name, refusal.error)
        return _with_params(flight.redirect_uri, error=refusal.error, error_description=refusal.description)
    code, now = secrets.token_urlsafe(32), utcnow()
    session.execute(delete(OidcExchangeCode).where(OidcExchangeCode.expires_at <= now))
    session.add(OidcExchangeCode(code_hash=_digest(code), user_id=user.id,
                                 expires_at=now + timedelta(seconds=CODE_SECONDS)))
    session.commit()
    return _with_params(flight.redirect_uri, code=code)


def exchange(session: Session, code: str, *, user_agent: str = "", ip: str = "") -> dict:
    """Spend a one-time code (one DELETE: of two racing requests, one wins) for a login's answer."""
    spent = session.execute(
        delete(OidcExchangeCode).where(OidcExchangeCode.code_hash == _digest(code or ""))
        .returning(OidcExchangeCode.user_id, OidcExchangeCode.expires_at)
    ).first()
    user = session.get(User, spent.user_id) if spent is not None and spent.expires_at > utcnow() else None
    if user is None or not user.is_active:
        session.commit()  # presented once, gone: an expired code too
        raise BadToken(CODE_SPENT)
    _, mfa_on = mfa_challenges.account(session, user.email)
    if mfa_on:  # the provider vouched for the first factor only
        return mfa_challenges.start(session, user.id)
    return auth_services.sign_in(session, user, user_agent=user_agent, ip=ip)


def _spend_state(session: Session, provider: providers.Provider, state) -> Flight:
    """Delete the authorization request named by `state` (committed at once: spent whatever follows)."""
    row = session.get(OidcLoginState, _digest(state)) if isinstance(state, str) and state else None
    if row is None or row.provider != provider.name or row.expires_at <= utcnow():
        raise BadToken(STATE_SPENT)
    flight = Flight(row.nonce, row.code_verifier, row.redirect_uri)
    spent = session.execute(delete(OidcLoginState).where(OidcLoginState.state_hash == row.state_hash)).rowcount
    session.commit()
    if spent != 1:
        raise BadToken(STATE_SPENT)
    return flight


def _verified_claims(provider: providers.Provider, flight: Flight, callback_url: str, params: dict) -> dict:
    """The ID token's claims (verified by Authlib) completed by the userinfo endpoint."""
    if params.get("error"):
        error = params["error"] if params["error"] in OAUTH_ERRORS else "sign_in_failed"
        raise Refused(error, "The provider did not sign you in.")
    if params.get("iss") is not None and params["iss"] != provider.issuer:  # RFC 9207: a mix-up
        raise Refused("invalid_response", "The answer came from another provider.")
    if not params.get("code"):
        raise Refused("invalid_request", "The provider sent no authorization code.")
    client = providers.client(provider)
    try:
        token = client.fetch_access_token(redirect_uri=callback_url, code=params["code"],
                                          code_verifier=flight.code_verifier)
    except providers.FAILURES as exc:
        log.warning("oidc code exchange failed at %s: %s", provider.name, _describe(exc))
        raise Refused("sign_in_failed", "The provider did not accept the sign-in; start again.") from None
    try:
        claims = dict(client.parse_id_token(token, nonce=flight.nonce) or {})
        if not claims:
            raise providers.ProviderFailed("no id_token in the token response")
        info = client.userinfo(token=token) if client.load_server_metadata().get("userinfo_endpoint") else {}
        if info and info.get("sub") != claims["sub"]:
            raise providers.ProviderFailed("userinfo describes another subject")
    except providers.FAILURES as exc:
        log.warning("oidc id token refused from %s: %s", provider.name, _describe(exc))
        raise Refused("invalid_id_token", "The provider's ID token did not verify.") from None
    return {**info, **claims}


def _account_for(session: Session, provider: providers.Provider, claims: dict, ip: str) -> User:
    """The linked user; else an account linked through a verified email; else a new user."""
    subject = claims["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise Refused("invalid_id_token", "The provider's subject identifier is not usable.")
    user_id = session.scalar(select(UserIdentity.user_id)
                             .where(UserIdentity.provider == provider.name, UserIdentity.subject == subject))
    if user_id is not None:
        user = session.get(User, user_id)
    else:
        try:
            user = _link_or_sign_up(session, provider, subject, claims, ip)
            session.flush()
        except IntegrityError:  # the same new account signing in twice at once
            raise Refused("sign_in_failed", "Another sign-in of this account ran at the same time; try again.") from None
    if not user.is_active:  # refused before anything is committed: no link is left behind either
        raise Refused("account_disabled", "This account is disabled.")
    return user


def _link_or_sign_up(session: Session, provider: providers.Provider, subject: str, claims: dict, ip: str) -> User:
    try:
        email = validation.email(claims.get("email"))
    except Invalid:
        raise Refused("email_required", "The provider shared no usable email address.") from None
    if claims.get("email_verified") not in (True, "true"):
        raise Refused("email_not_verified", "The provider has not verified this email address, so it can "
                                            "neither sign in to an account nor create one.")
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        try:
            guard().hit("RATELIMIT_SIGNUP_IP", ip or "unknown")
        except RateLimited:
            raise Refused("temporarily_unavailable", "Too many sign-ups from this address; try again later.") from None
        user = User(name=_name(claims, email), email=email, password_hash=None, profile=Profile(),
                    email_verified=utcnow())
        session.add(user)
        session.flush()
    elif user.email_verified is None:
        # Someone signed this address up without proving it: whoever did may hold its password
        # and sessions. The provider has now proven the address belongs to the one signing in.
        user.email_verified = utcnow()
        user.password_hash = None  # a password reset by email sets one again
        auth_services.revoke_sessions(session, user.id)
    session.add(UserIdentity(provider=provider.name, subject=subject, user_id=user.id, email=email))
    return user


def _name(claims: dict, email: str) -> str:
    """A display name from the claims: `name`, else given and family names, else the email's local part."""
    candidates = (claims.get("name"), " ".join(str(claims.get(key) or "") for key in ("given_name", "family_name")))
    for candidate in candidates:
        try:
            return validation.name(candidate[:validation.NAME_MAX] if isinstance(candidate, str) else candidate)
        except Invalid:
            continue
    return email.split("@")[0][:validation.NAME_MAX]


def _with_params(uri: str, **params) -> str:
    """`uri` with `params` added to its query (an allowed URI may carry a query of its own)."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(query=urlencode([*parse_qsl(parts.query, keep_blank_values=True),
                                                      *params.items()])))


def _describe(exc: Exception) -> str:
    """An exception, for the log, without what it may carry (tokens are never in these fields)."""
    parts = (getattr(exc, "error", ""), getattr(exc, "description", ""),
             str(exc) if isinstance(exc, providers.ProviderFailed) else "")
    detail = " ".join(str(part) for part in parts if part)
    return f"{type(exc).__name__}{': ' + detail[:200] if detail else ''}"
