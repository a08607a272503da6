"""Marshmallow schemas of the REST door: what goes in, what comes out, and the OpenAPI docs."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from webapp import validation
from webapp.errors import Invalid
from webapp.users.models import ROLES
from webapp.users.services import SORTS


class Schema(ma.Schema):
    class Meta:
        ordered = True


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


class AvatarThumbnailSchema(Schema):
    size = fields.Integer(metadata={"description": "Width and height in pixels."})
    url = fields.String()


class ProfileSchema(Schema):
    first_name = fields.String()
    last_name = fields.String()
    bio = fields.String()
    avatar_url = fields.String(allow_none=True, dump_only=True, metadata={"description": "The re-encoded original."})
    avatar_thumbnails = fields.List(fields.Nested(AvatarThumbnailSchema), dump_only=True,
                                    metadata={"description": "64 and 256 px, once the background task has made them."})


class UserSchema(Schema):
    """A user: the public view, plus the private fields for the user themself and admins."""

    id = fields.Integer()
    name = fields.String()
    role = fields.String()
    created_at = fields.DateTime()
    profile = fields.Nested(ProfileSchema)
    email = fields.String(metadata={"description": "Private view only."})
    is_active = fields.Boolean(metadata={"description": "Private view only."})
    email_verified = fields.DateTime(allow_none=True, metadata={"description": "Private view only: when the address was verified."})
    updated_at = fields.DateTime(metadata={"description": "Private view only."})


class SignupSchema(Schema):
    name = text_field(required=True, min_len=1, max_len=validation.NAME_MAX, check=validation.name, pattern=NOT_BLANK)
    email = email_field(required=True)
    password = text_field(required=True, min_len=validation.PASSWORD_MIN, max_len=validation.PASSWORD_MAX)


class UserPatchSchema(Schema):
    name = text_field(min_len=1, max_len=validation.NAME_MAX, check=validation.name, pattern=NOT_BLANK)
    email = email_field()
    role = fields.String(validate=validate.OneOf(ROLES), metadata={"description": "Admins only."})
    is_active = StrictBoolean(metadata={"description": "Admins only."})


class UserPutSchema(UserPatchSchema):
    name = text_field(required=True, min_len=1, max_len=validation.NAME_MAX, check=validation.name, pattern=NOT_BLANK)
    email = email_field(required=True)


SORT_CHOICES = [key for name in SORTS for key in (name, f"-{name}")]


class UserListArgs(Schema):
    q = text_field(max_len=100, metadata={"description": "Search: name (contains); admins also match an email prefix."})
    sort = fields.String(load_default="id", validate=validate.OneOf(SORT_CHOICES))


class LoginSchema(Schema):
    email = text_field(required=True, max_len=validation.EMAIL_MAX)
    password = text_field(required=True, max_len=validation.PASSWORD_MAX * 10)


class TokenSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String(metadata={"example": "bearer"})
    expires_in = fields.Integer(metadata={"description": "Seconds until the access token expires."})


class RefreshSchema(Schema):
    refresh_token = fields.String(metadata={"description": "Or send it as the bearer token."})


class PasswordChangeSchema(Schema):
    current_password = text_field(required=True, max_len=validation.PASSWORD_MAX * 10)
    new_password = text_field(required=True, min_len=validation.PASSWORD_MIN, max_len=validation.PASSWORD_MAX)
