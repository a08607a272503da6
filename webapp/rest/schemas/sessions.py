"""Schemas of /users/me/sessions."""
from __future__ import annotations

from marshmallow import fields

from webapp.rest.schemas.base import Schema


class SessionSchema(Schema):
    id = fields.String()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(metadata={"description": "Sign-in or last token refresh."})
    user_agent = fields.String()
    ip = fields.String()
    current = fields.Boolean(metadata={"description": "The session of the token making this request."})
