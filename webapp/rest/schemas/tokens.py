"""Schemas of /users/me/tokens and /users/{id}/tokens: personal access tokens."""
from __future__ import annotations

from marshmallow import fields, validate

from webapp import validation
from webapp.auth.permissions import SCOPES
from webapp.rest.schemas.base import NOT_BLANK, Schema, text_field


class PersonalAccessTokenSchema(Schema):
    """A personal access token as listed: never its secret."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), required=True,
                         metadata={"description": "`read`, or `read` and `write`."})
    prefix = fields.String(required=True, metadata={"description": "The token's public start, to tell tokens apart."})
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True, allow_none=True,
                                   metadata={"description": "Updated at most once a minute; null until first used."})


class NewPersonalAccessTokenSchema(PersonalAccessTokenSchema):
    token = fields.String(required=True, metadata={
        "description": "The token (`dlt_pat_…`), shown this once: send it as `Authorization: Bearer …`."})


class PersonalAccessTokenCreateSchema(Schema):
    name = text_field(required=True, min_len=1, max_len=validation.NAME_MAX, check=validation.name, pattern=NOT_BLANK)
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), required=True,
                         validate=validate.Length(min=1, max=len(SCOPES)),
                         metadata={"description": "`[\"read\"]` (reads only) or `[\"read\", \"write\"]`."})
    expires_in_days = fields.Integer(strict=True, validate=validate.Range(min=1, max=365), metadata={
        "description": "Days until it expires: 30 when left out; at most 365, or PAT_MAX_DAYS when that is lower."})
