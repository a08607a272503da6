"""/api/v1/auth: email verification and password reset (the emails are sent by workers)."""
from __future__ import annotations

from flask.views import MethodView

from webapp.accounts import services
from webapp.extensions import db
from webapp.rest.common import Blueprint, authenticated, client_facts, viewer
from webapp.rest.schemas.accounts import PasswordResetConfirmSchema, PasswordResetRequestSchema, TokenBodySchema

PREFIX = "/auth"
blp = Blueprint("accounts", __name__, description="Email verification and password reset.")


@blp.route("/verify-email")
class VerifyEmail(MethodView):
    @blp.arguments(TokenBodySchema)
    @blp.response(204)
    @blp.alt_response(400, description="The token is invalid, expired or already used.")
    def post(self, data):
        """Verify the address with the token from the email"""
        services.verify_email(db.session, data["token"])


@blp.route("/verify-email/resend")
class ResendVerification(MethodView):
    @authenticated(blp)
    @blp.response(202)
    def post(self):
        """Send a fresh verification email (a few per hour)"""
        services.resend_verification(db.session, viewer())


@blp.route("/password-reset")
class PasswordReset(MethodView):
    @blp.arguments(PasswordResetRequestSchema)
    @blp.response(202)
    def post(self, data):
        """Email a reset link if the account exists; the answer is the same either way"""
        services.request_password_reset(data["email"], ip=client_facts()["ip"])


@blp.route("/password-reset/confirm")
class PasswordResetConfirm(MethodView):
    @blp.arguments(PasswordResetConfirmSchema)
    @blp.response(204)
    @blp.alt_response(400, description="The token is invalid, expired or already used.")
    def post(self, data):
        """Set a new password with the emailed token; every session of the user is signed out"""
        services.reset_password(db.session, data["token"], data["new_password"])
