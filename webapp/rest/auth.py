"""/api/v1/auth: sign-in, token rotation, sign-out and password change."""
from __future__ import annotations

from flask import request
from flask.views import MethodView

from webapp.auth import services
from webapp.errors import Unauthenticated
from webapp.extensions import db
from webapp.rest.common import Blueprint, authenticated, client_facts, operation, session_id, viewer
from webapp.rest.schemas.accounts import LoginSchema, PasswordChangeSchema, RefreshSchema, TokenSchema
from webapp.rest.schemas.mfa import LoginResultSchema

PREFIX = "/auth"
blp = Blueprint("auth", __name__, description="Sign-in and the tokens that come with it.")


@blp.route("/login")
class Login(MethodView):
    @operation(blp, "login", (401, "Unknown email or wrong password (the same answer for both)."))
    @blp.arguments(LoginSchema)
    @blp.response(200, LoginResultSchema)
    def post(self, data):
        """Sign in with email and password

        Answers an access token (send it as `Authorization: Bearer ...`) and a refresh token that
        `refreshTokens` swaps for a new pair. For an account with two-factor sign-in on it answers
        `mfa_required: true` and an `mfa_token` instead, which `verifyMfa` turns into the pair with
        a code. Repeated failures for one account or address are rate limited (429).
        """
        return services.login(db.session, data["email"], data["password"], **client_facts())


@blp.route("/refresh")
class Refresh(MethodView):
    @operation(blp, "refreshTokens", (401, "No refresh token, or one that is spent, revoked or expired."))
    @blp.arguments(RefreshSchema, required=False)
    @blp.response(200, TokenSchema)
    def post(self, data):
        """Swap a refresh token for a new pair; the old one is spent

        Send the refresh token as `refresh_token` in the body (or as the bearer token). Presenting
        a token that was already spent signs out its whole family: someone else may hold a copy.
        """
        token = data.get("refresh_token")
        header = request.headers.get("Authorization", "")
        if not token and header[:7].lower() == "bearer ":
            token = header[7:].strip()
        if not token:
            raise Unauthenticated("Missing refresh token.")
        return services.refresh(db.session, token, **client_facts())


@blp.route("/logout")
class Logout(MethodView):
    @operation(blp, "logout")
    @authenticated(blp)
    @blp.response(204)
    def post(self):
        """Sign out: this access token and its refresh family stop working at once

        Other sessions of the same user stay signed in (`deleteSession` signs out another one).
        """
        services.logout(db.session, viewer(), session_id())


@blp.route("/password")
class PasswordChange(MethodView):
    @operation(blp, "changePassword", (403, "The current password is wrong."))
    @authenticated(blp)
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    def post(self, data):
        """Change the password; every other session is signed out

        Needs the current password; wrong guesses are rate limited (429). This session stays
        signed in.
        """
        services.change_password(db.session, viewer(), session_id(),
                                 data["current_password"], data["new_password"])
