"""Schemas of /users/me/sessions."""
from __future__ import annotations

from marshmallow import fields

from webapp.rest.schemas.base import Schema


class SessionSchema(Schema):
    id = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True, metadata={"description": "Sign-in or last token refresh."})
    user_agent = fields.String(required=True, metadata={"description": "Empty when the client sent none."})
    ip = fields.String(required=True)
    current = fields.Boolean(required=True, metadata={"description": "The session of the token making this request."})
