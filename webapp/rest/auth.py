"""/api/v1/auth: sign-in, token rotation, sign-out and password change."""
from __future__ import annotations

from flask import request
from flask.views import MethodView

from webapp.auth import services
from webapp.errors import Unauthenticated
from webapp.extensions import db
from webapp.rest.common import BEARER, Blueprint, authenticated, client_facts, session_id, viewer
from webapp.rest.schemas.accounts import LoginSchema, PasswordChangeSchema, RefreshSchema, TokenSchema

PREFIX = "/auth"
blp = Blueprint("auth", __name__, description="Sign-in and the tokens that come with it.")


@blp.route("/login")
class Login(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    def post(self, data):
        """Sign in with email and password"""
        return services.login(db.session, data["email"], data["password"], **client_facts())


@blp.route("/refresh")
class Refresh(MethodView):
    @blp.doc(security=[{}, *BEARER])
    @blp.arguments(RefreshSchema, required=False)
    @blp.response(200, TokenSchema)
    def post(self, data):
        """Swap a refresh token (bearer or body) for a new pair; the old one is spent"""
        token = data.get("refresh_token")
        header = request.headers.get("Authorization", "")
        if not token and header[:7].lower() == "bearer ":
            token = header[7:].strip()
        if not token:
            raise Unauthenticated("Missing refresh token.")
        return services.refresh(db.session, token, **client_facts())


@blp.route("/logout")
class Logout(MethodView):
    @authenticated(blp)
    @blp.response(204)
    def post(self):
        """Sign out: this access token and its refresh family stop working at once"""
        services.logout(db.session, viewer(), session_id())


@blp.route("/password")
class PasswordChange(MethodView):
    @authenticated(blp)
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    def post(self, data):
        """Change the password; every other session is signed out"""
        services.change_password(db.session, viewer(), session_id(),
                                 data["current_password"], data["new_password"])
