"""Schemas of /posts and /users/{id}/posts."""
from __future__ import annotations

from marshmallow import fields, validate

from webapp.posts.queries import DEFAULT_SORT, SORTS
from webapp.posts.services import CONTENT_MAX, TITLE_MAX
from webapp.rest.schemas.base import NOT_BLANK, Schema, StrictBoolean, text_field


class AuthorSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class PostSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    content = fields.String(required=True)
    published = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    author_id = fields.Integer(required=True)
    author = fields.Nested(AuthorSchema, required=True)


class PostPatchSchema(Schema):
    title = text_field(min_len=1, max_len=TITLE_MAX, pattern=NOT_BLANK)
    content = text_field(max_len=CONTENT_MAX)
    published = StrictBoolean()


class PostPutSchema(PostPatchSchema):
    title = text_field(required=True, min_len=1, max_len=TITLE_MAX, pattern=NOT_BLANK)
    content = text_field(required=True, max_len=CONTENT_MAX)
    published = StrictBoolean(load_default=False)


class PostCreateSchema(PostPutSchema):
    content = text_field(load_default="", max_len=CONTENT_MAX)


SORT_CHOICES = [key for name in SORTS for key in (name, f"-{name}")]


class UserPostListArgs(Schema):
    q = text_field(max_len=100, metadata={"description": "Search in titles (contains, case-insensitive)."})
    sort = fields.String(load_default=DEFAULT_SORT, validate=validate.OneOf(SORT_CHOICES))
    published = fields.Boolean(metadata={"description": "Only published (true) or only drafts (false); "
                                                        "drafts are visible to their author and admins."})
    # base64url of [sort, value, id]: a title-sorted cursor can reach ~1,700 characters.
    cursor = fields.String(validate=[validate.Length(min=1, max=2048), validate.Regexp(r"^[A-Za-z0-9_-]+$")],
                           metadata={"pattern": "^[A-Za-z0-9_-]+$", "description": (
                               "Keyset pagination: the `X-Next-Cursor` of the previous response (instead of "
                               "`page`, with the same filters and sort). Deep pages by cursor cost what page 1 "
                               "costs.")})


class PostListArgs(UserPostListArgs):
    author_id = fields.Integer(validate=validate.Range(min=1))
