"""Schemas of /auth: sign-in, tokens, password change, email verification and password reset."""
from __future__ import annotations

from marshmallow import fields, validate

from webapp import validation
from webapp.rest.schemas.base import Schema, email_field, text_field


class LoginSchema(Schema):
    email = text_field(required=True, max_len=validation.EMAIL_MAX)
    password = text_field(required=True, max_len=validation.PASSWORD_MAX * 10)


class TokenSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, validate=validate.OneOf(["bearer"]))
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds until the access token expires."})


class RefreshSchema(Schema):
    refresh_token = fields.String(metadata={"description": "Or send it as the bearer token."})


class PasswordChangeSchema(Schema):
    current_password = text_field(required=True, max_len=validation.PASSWORD_MAX * 10)
    new_password = text_field(required=True, min_len=validation.PASSWORD_MIN, max_len=validation.PASSWORD_MAX)


class TokenBodySchema(Schema):
    token = text_field(required=True, max_len=200)


class PasswordResetRequestSchema(Schema):
    email = email_field(required=True)


class PasswordResetConfirmSchema(Schema):
    token = text_field(required=True, max_len=200)
    new_password = text_field(required=True, min_len=validation.PASSWORD_MIN, max_len=validation.PASSWORD_MAX)
