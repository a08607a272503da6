"""Schemas of /users: the user views, sign-up, edits and the directory's arguments."""
from __future__ import annotations

from marshmallow import fields, validate

from webapp import validation
from webapp.rest.schemas.base import NOT_BLANK, Schema, StrictBoolean, email_field, text_field
from webapp.rest.schemas.profiles import ProfileSchema
from webapp.users.models import ROLES
from webapp.users.services import SORTS


class UserSchema(Schema):
    """A user: the public view, plus the private fields for the user themself and admins."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    created_at = fields.DateTime(required=True)
    profile = fields.Nested(ProfileSchema, required=True)
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
