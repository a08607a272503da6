"""Schemas of the jobs and account-email endpoints (kept apart from schemas.py to stay small)."""
from __future__ import annotations

from marshmallow import fields, validate
from flask_smorest.fields import Upload

from webapp import validation
from webapp.jobs.models import STATUSES
from webapp.jobs.services import FORMATS
from webapp.rest.schemas import Schema, email_field, text_field


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


class TokenBodySchema(Schema):
    token = text_field(required=True, max_len=200)


class PasswordResetRequestSchema(Schema):
    email = email_field(required=True)


class PasswordResetConfirmSchema(Schema):
    token = text_field(required=True, max_len=200)
    new_password = text_field(required=True, min_len=validation.PASSWORD_MIN, max_len=validation.PASSWORD_MAX)
