"""Schemas of /auth/mfa and of the login answer, which may ask for the second factor instead of tokens."""
from __future__ import annotations

from marshmallow import fields

from webapp import validation
from webapp.rest.schemas.base import Schema, text_field

CODE = {"description": "The 6-digit code the authenticator app shows now.", "example": "123456"}
CODE_PATTERN = r"^[0-9]{6}$"
# What the service reads as a recovery code: 12 of Crockford's base32 letters, any case, with
# dashes or spaces anywhere (as printed, `7k2m-q9xd-4hbn`, or as typed).
RECOVERY_PATTERN = r"^[ -]*([0-9A-HJKMNP-TV-Za-hjkmnp-tv-z][ -]*){12}$"


class LoginResultSchema(Schema):
    """The token pair, or (`mfa_required`) an mfa_token for `verifyMfa` and no tokens."""

    access_token = fields.String(metadata={"description": "Absent when `mfa_required`."})
    refresh_token = fields.String(metadata={"description": "Absent when `mfa_required`."})
    token_type = fields.String(metadata={"enum": ["bearer"], "description": "Absent when `mfa_required`."})
    expires_in = fields.Integer(metadata={"description": "Seconds until the access token expires."})
    mfa_required = fields.Boolean(metadata={
        "description": "Present (true) only when the account has two-factor sign-in on: send `mfa_token` "
                       "and a code to `verifyMfa`."})
    mfa_token = fields.String(metadata={"description": "Single use, valid for 5 minutes (MFA_TOKEN_SECONDS)."})


class TotpEnrollmentSchema(Schema):
    secret = fields.String(required=True, metadata={"description": "The base32 seed, for typing into an app."})
    otpauth_url = fields.String(required=True, metadata={
        "description": "`otpauth://totp/...`: show it as a QR code for an authenticator app to scan."})


class TotpCodeSchema(Schema):
    code = text_field(required=True, max_len=6, pattern=CODE_PATTERN, metadata=CODE)


class RecoveryCodesSchema(Schema):
    recovery_codes = fields.List(fields.String(), required=True, metadata={
        "description": "10 single-use codes, each signs in once in place of a code. Shown this once only."})


class MfaVerifySchema(Schema):
    mfa_token = text_field(required=True, max_len=200, metadata={"description": "From the login answer."})
    code = text_field(max_len=6, pattern=CODE_PATTERN,
                      metadata={**CODE, "description": "The code; or send `recovery_code`."})
    recovery_code = text_field(max_len=40, pattern=RECOVERY_PATTERN, metadata={
        "description": "A recovery code; or send `code`.", "example": "ab12-cd34-ef56"})


class TotpDisableSchema(Schema):
    code = text_field(max_len=6, pattern=CODE_PATTERN,
                      metadata={**CODE, "description": "A current code; or send `password`."})
    password = text_field(max_len=validation.PASSWORD_MAX * 10,
                          metadata={"description": "The account's password; or send `code`."})
