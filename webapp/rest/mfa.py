"""/api/v1/auth/mfa: two-factor sign-in with TOTP (webapp/mfa/services.py holds the rules)."""
from __future__ import annotations

from flask.views import MethodView

from webapp.extensions import db
from webapp.mfa import services
from webapp.rest.common import Blueprint, authenticated, client_facts, operation, viewer
from webapp.rest.schemas.accounts import TokenSchema
from webapp.rest.schemas.mfa import (
    MfaVerifySchema,
    RecoveryCodesSchema,
    TotpCodeSchema,
    TotpDisableSchema,
    TotpEnrollmentSchema,
)

PREFIX = "/auth/mfa"
blp = Blueprint("mfa", __name__, description="Two-factor sign-in with an authenticator app (TOTP).")
SESSION_ONLY = (403, "A personal access token cannot manage two-factor sign-in; use a signed-in session.")


@blp.route("/totp")
class Totp(MethodView):
    @operation(blp, "enrollTotp", SESSION_ONLY, (409, "Two-factor sign-in is already on."))
    @authenticated(blp)
    @blp.response(200, TotpEnrollmentSchema)
    def post(self):
        """Start enrolling an authenticator app

        Answers a new seed and its `otpauth://` URL (show it as a QR code). Two-factor sign-in
        stays off until `confirmTotp` receives a code the app made; enrolling again before that
        starts over with a new seed.
        """
        return services.enroll(db.session, viewer())

    @operation(blp, "disableTotp", (403, "The code or password is wrong, or a personal access token was used."),
               (409, "Two-factor sign-in is not on."), 413)
    @authenticated(blp)
    @blp.arguments(TotpDisableSchema)
    @blp.response(204)
    def delete(self, data):
        """Turn two-factor sign-in off

        Needs exactly one of a current `code` or the account's `password`; the recovery codes are
        deleted too. Wrong guesses are rate limited (429).
        """
        services.disable(db.session, viewer(), code=data.get("code"), password=data.get("password"))


@blp.route("/totp/confirm")
class TotpConfirm(MethodView):
    @operation(blp, "confirmTotp", SESSION_ONLY,
               (409, "No enrolment in progress, or two-factor sign-in is already on."))
    @authenticated(blp)
    @blp.arguments(TotpCodeSchema)
    @blp.response(200, RecoveryCodesSchema)
    def post(self, data):
        """Turn two-factor sign-in on with a code from the app

        Answers 10 recovery codes, shown this once: each signs in once in place of a code. A
        wrong code is a 422 naming `code`; wrong guesses are rate limited (429).
        """
        return services.confirm(db.session, viewer(), data["code"])


@blp.route("/verify")
class Verify(MethodView):
    @operation(blp, "verifyMfa", (401, "The mfa_token is invalid, expired or spent, or the code is wrong."))
    @blp.arguments(MfaVerifySchema)
    @blp.response(200, TokenSchema)
    def post(self, data):
        """Finish a sign-in with the second factor

        Send the login's `mfa_token` with exactly one of `code` or `recovery_code`; answers the
        token pair, as `login` does without two-factor sign-in. A code is accepted once, a
        recovery code too; wrong guesses are rate limited per account (429).
        """
        return services.verify(db.session, data["mfa_token"], code=data.get("code"),
                               recovery_code=data.get("recovery_code"), **client_facts())
