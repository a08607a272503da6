"""Schemas of /jobs and /users/me/export."""
from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import fields, validate

from webapp.jobs.models import KINDS, STATUSES
from webapp.jobs.services import FORMATS
from webapp.rest.schemas.base import Schema


class JobSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    owner_id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    progress = fields.Integer(required=True, metadata={"description": "0 to 100.", "minimum": 0, "maximum": 100})
    # A dict, not a nested schema: dumping through one would drop the keys it does not name.
    params = fields.Dict(keys=fields.String(), required=True, metadata={
        "description": "What the job was asked to do (a user export: its `format`).",
        "properties": {"format": {"type": "string", "enum": list(FORMATS)}}})
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(required=True, allow_none=True)
    finished_at = fields.DateTime(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True, metadata={"description": "Why it failed; null otherwise."})
    result_url = fields.String(required=True, allow_none=True,
                               metadata={"description": "Set once the job has succeeded; null before."})


class ExportRequestSchema(Schema):
    format = fields.String(load_default="csv", validate=validate.OneOf(FORMATS))


class ImportFileSchema(Schema):
    file = Upload(required=True, metadata={"description": "CSV with the columns name,email[,role]."})
