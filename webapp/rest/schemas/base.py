"""What every REST schema module shares: the ordered Schema, text and email fields, strict booleans."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from webapp import validation
from webapp.errors import Invalid


class Schema(ma.Schema):
    class Meta:
        ordered = True


class ErrorSchema(Schema):
    """Every error body (webapp/errors.py `envelope`); OpenAPI's `Error`, declared on each status an operation answers."""

    code = fields.Integer(required=True, metadata={"description": "The HTTP status.", "example": 404})
    status = fields.String(required=True, metadata={"description": "Its reason phrase.", "example": "Not Found"})
    message = fields.String(required=True, metadata={"description": "What went wrong, for people."})
    errors = fields.Dict(keys=fields.String(), metadata={
        "description": "Per-field messages (`{\"email\": [\"...\"]}`), when the request had fields in error."})


class MessageSchema(Schema):
    """A 202 that starts no job the client can follow: what happens next, in words."""

    message = fields.String(required=True)


NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\x00\s][^\x00]*$"


def text_field(*, required=False, min_len=0, max_len=validation.TEXT_MAX, check=None, pattern=NO_NUL, **kwargs):
    """A string with its limits in OpenAPI (length, no NUL) and, optionally, the domain's rule."""
    validators = [validate.Length(min=min_len, max=max_len)]
    if check:
        validators.append(rule(check))
    metadata = {"pattern": pattern, **kwargs.pop("metadata", {})}
    return fields.String(required=required, validate=validators, metadata=metadata, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true or false only: 0, 1, "yes" and friends are type errors, not booleans."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def rule(check):
    """A marshmallow validator running the domain's own rule, so both doors say the same."""
    def validator(value):
        try:
            check(value)
        except Invalid as exc:
            raise ma.ValidationError(exc.message) from None
    return validator


def email_field(**kwargs):
    """Normalised (trimmed, lower-cased) by the service; checked here too, to report every field at once."""
    return fields.String(validate=rule(validation.email), metadata={"format": "email", "maxLength": validation.EMAIL_MAX},
                         **kwargs)
