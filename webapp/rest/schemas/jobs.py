"""Schemas of /jobs and /users/me/export."""
from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import fields, validate

from webapp.jobs.models import STATUSES
from webapp.jobs.services import FORMATS
from webapp.rest.schemas.base import Schema


class JobSchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"example": "user-export"})
    owner_id = fields.Integer()
    status = fields.String(validate=validate.OneOf(STATUSES))
    progress = fields.Integer(metadata={"description": "0 to 100."})
    params = fields.Dict()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True)
    result_url = fields.String(allow_none=True, metadata={"description": "Set once the job has succeeded."})


class ExportRequestSchema(Schema):
    format = fields.String(load_default="csv", validate=validate.OneOf(FORMATS))


class ImportFileSchema(Schema):
    file = Upload(required=True, metadata={"description": "CSV with the columns name,email[,role]."})
