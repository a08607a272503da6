"""GraphQL sign-in and account emails: tokens, sign-out, email verification, password reset."""
from __future__ import annotations

import strawberry
from strawberry.types import Info

from webapp.accounts import services as accounts
from webapp.auth import services as auth_services
from webapp.extensions import db


@strawberry.type
class TokenPair:
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


@strawberry.type(description="The token pair, or (mfaRequired) an mfaToken for verifyMfa and no tokens.")
class LoginResult:
    access_token: str | None = None
    refresh_token: str | None = None
    token_type: str | None = None
    expires_in: int | None = None
    mfa_required: bool = strawberry.field(default=False, description=(
        "True: the account has two-factor sign-in on; send mfaToken and a code to verifyMfa."))
    mfa_token: str | None = strawberry.field(default=None, description="Single use, valid for 5 minutes.")


@strawberry.type
class AccountMutation:
    @strawberry.mutation(description="Sign in with email and password (two-factor accounts: see LoginResult).")
    def login(self, info: Info, email: str, password: str) -> LoginResult:
        return LoginResult(**auth_services.login(db.session, email, password, **info.context.client_facts))

    @strawberry.mutation
    def refresh_token(self, info: Info, refresh_token: str) -> TokenPair:
        return TokenPair(**auth_services.refresh(db.session, refresh_token, **info.context.client_facts))

    @strawberry.mutation(description="Sign out this session: its access and refresh tokens stop working.")
    def logout(self, info: Info) -> bool:
        viewer = info.context.require_viewer()
        auth_services.logout(db.session, viewer, info.context.session_id)
        return True

    @strawberry.mutation(description="Verify the email address with the token from the email.")
    def verify_email(self, info: Info, token: str) -> bool:
        accounts.verify_email(db.session, token)
        return True

    @strawberry.mutation(description="Send a fresh verification email.")
    def resend_verification_email(self, info: Info) -> bool:
        accounts.resend_verification(db.session, info.context.require_viewer())
        return True

    @strawberry.mutation(description="Email a reset link if the account exists; true either way.")
    def request_password_reset(self, info: Info, email: str) -> bool:
        accounts.request_password_reset(email, ip=info.context.client_facts["ip"])
        return True

    @strawberry.mutation(description="Set a new password with the emailed token; every session is signed out.")
    def reset_password(self, info: Info, token: str, new_password: str) -> bool:
        accounts.reset_password(db.session, token, new_password)
        return True
