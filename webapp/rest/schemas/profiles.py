"""Schemas of /users/{id}/profile and /avatar."""
from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import fields

from webapp import validation
from webapp.profiles.services import BIO_MAX
from webapp.rest.schemas.base import Schema, text_field


class AvatarThumbnailSchema(Schema):
    size = fields.Integer(required=True, metadata={"description": "Width and height in pixels."})
    url = fields.String(required=True)


class ProfileSchema(Schema):
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)
    bio = fields.String(required=True)
    avatar_url = fields.String(required=True, allow_none=True, dump_only=True,
                               metadata={"description": "The re-encoded original; null without an avatar."})
    avatar_thumbnails = fields.List(fields.Nested(AvatarThumbnailSchema), required=True, dump_only=True,
                                    metadata={"description": "64 and 256 px, once the background task has made them."})


class ProfilePatchSchema(Schema):
    first_name = text_field(max_len=validation.NAME_MAX)
    last_name = text_field(max_len=validation.NAME_MAX)
    bio = text_field(max_len=BIO_MAX)


class AvatarUploadSchema(Schema):
    file = Upload(required=True, metadata={"description": "PNG, JPEG or WebP, at most 5 MiB."})
