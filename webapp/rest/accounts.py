"""/api/v1/auth: email verification and password reset (the emails are sent by workers)."""
from __future__ import annotations

from flask.views import MethodView

from webapp.accounts import services
from webapp.extensions import db
from webapp.rest.common import Blueprint, authenticated, client_facts, operation, viewer
from webapp.rest.schemas.accounts import PasswordResetConfirmSchema, PasswordResetRequestSchema, TokenBodySchema
from webapp.rest.schemas.base import MessageSchema

PREFIX = "/auth"
blp = Blueprint("accounts", __name__, description="Email verification and password reset.")

# The 202s start no job a client could follow: they say what happens next (PRODUCT.md: never `null`).
RESEND_MESSAGE = "If the address is not verified yet, a verification email is on its way."
RESET_MESSAGE = "If an account exists for this address, a reset link is on its way."


@blp.route("/verify-email")
class VerifyEmail(MethodView):
    @operation(blp, "verifyEmail", (400, "The token is invalid, expired or already used."))
    @blp.arguments(TokenBodySchema)
    @blp.response(204)
    def post(self, data):
        """Verify the address with the token from the email

        The token is the `token` parameter of the link in the verification email. Once verified,
        the user may write posts.
        """
        services.verify_email(db.session, data["token"])


@blp.route("/verify-email/resend")
class ResendVerification(MethodView):
    @operation(blp, "resendVerificationEmail")
    @authenticated(blp)
    @blp.response(202, MessageSchema)
    def post(self):
        """Send a fresh verification email (a few per hour)

        Nothing is sent when the address is verified already; past the hourly allowance the
        answer is 429 with `Retry-After`.
        """
        services.resend_verification(db.session, viewer())
        return {"message": RESEND_MESSAGE}


@blp.route("/password-reset")
class PasswordReset(MethodView):
    @operation(blp, "requestPasswordReset")
    @blp.arguments(PasswordResetRequestSchema)
    @blp.response(202, MessageSchema)
    def post(self, data):
        """Email a reset link if the account exists; the answer is the same either way

        The link carries a token for `confirmPasswordReset`. Requests are rate limited per address
        and per caller (429).
        """
        services.request_password_reset(data["email"], ip=client_facts()["ip"])
        return {"message": RESET_MESSAGE}


@blp.route("/password-reset/confirm")
class PasswordResetConfirm(MethodView):
    @operation(blp, "confirmPasswordReset", (400, "The token is invalid, expired or already used."))
    @blp.arguments(PasswordResetConfirmSchema)
    @blp.response(204)
    def post(self, data):
        """Set a new password with the emailed token; every session of the user is signed out

        The token is the `token` parameter of the link in the reset email; it works once.
        """
        services.reset_password(db.session, data["token"], data["new_password"])
