"""GraphQL two-factor sign-in: enrol, confirm, finish a sign-in, turn it off (webapp/mfa/services.py)."""
from __future__ import annotations

import strawberry
from strawberry.types import Info

from webapp.extensions import db
from webapp.graphql.accounts import TokenPair
from webapp.mfa import services


@strawberry.type(description="A new TOTP seed: show otpauthUrl as a QR code, then confirmTotp with a code.")
class TotpEnrollment:
    secret: str
    otpauth_url: str


@strawberry.type(description="Two-factor sign-in is on: 10 single-use recovery codes, shown this once.")
class TotpConfirmation:
    recovery_codes: list[str]


@strawberry.type
class MfaMutation:
    @strawberry.mutation(description="Start enrolling an authenticator app; TOTP stays off until confirmTotp.")
    def enroll_totp(self, info: Info) -> TotpEnrollment:
        return TotpEnrollment(**services.enroll(db.session, info.context.require_viewer()))

    @strawberry.mutation(description="Turn two-factor sign-in on with a code from the app.")
    def confirm_totp(self, info: Info, code: str) -> TotpConfirmation:
        return TotpConfirmation(**services.confirm(db.session, info.context.require_viewer(), code))

    @strawberry.mutation(description="Finish a sign-in: login's mfaToken and exactly one of code or recoveryCode.")
    def verify_mfa(self, info: Info, mfa_token: str, code: str | None = None,
                   recovery_code: str | None = None) -> TokenPair:
        return TokenPair(**services.verify(db.session, mfa_token, code=code, recovery_code=recovery_code,
                                           **info.context.client_facts))

    @strawberry.mutation(description="Turn two-factor sign-in off with exactly one of a current code or the password.")
    def disable_totp(self, info: Info, code: str | None = None, password: str | None = None) -> bool:
        services.disable(db.session, info.context.require_viewer(), code=code, password=password)
        return True
