"""Schemas of /auth/oidc: the provider list, the two browser legs of a sign-in, the code exchange."""
from __future__ import annotations

from marshmallow import EXCLUDE, fields

from webapp.rest.schemas.base import Schema, text_field


class OidcProvidersSchema(Schema):
    providers = fields.List(fields.String(), required=True,
                            metadata={"description": "The configured provider names, for `/auth/oidc/{provider}/authorize`."})


class AuthorizeArgs(Schema):
    redirect_uri = text_field(required=True, max_len=2048, metadata={
        "description": "Where the browser is sent when the sign-in ends: exactly one of `OIDC_REDIRECT_URIS`."})


class CallbackArgs(Schema):
    """What a provider sends back (RFC 6749 4.1.2, RFC 9207); anything else it adds is ignored."""

    class Meta:
        ordered = True
        unknown = EXCLUDE

    state = text_field(max_len=512)
    code = text_field(max_len=4096)
    error = text_field(max_len=128)
    error_description = text_field(max_len=1024)
    iss = text_field(max_len=2048)


class OidcExchangeSchema(Schema):
    code = text_field(required=True, max_len=256, metadata={
        "description": "The `code` the sign-in left on the app's redirect_uri (single use, 60 seconds)."})
