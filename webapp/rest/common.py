"""Small pieces every REST blueprint uses: the auth decorator and request facts."""
from __future__ import annotations

import hashlib
import json

import flask_smorest
from flask import g, jsonify, request
from flask_jwt_extended import get_current_user, get_jwt, jwt_required, verify_jwt_in_request
from flask_smorest.etag import IF_MATCH_HEADER, _get_etag_ctx
from flask_smorest.exceptions import PreconditionFailed
from flask_smorest.utils import resolve_schema_instance
from marshmallow import Schema, missing
from webargs.flaskparser import FlaskParser, abort

from webapp.jsonio import JSONInputError, strict_loads

BEARER = [{"bearerAuth": []}]
OPTIONAL_BEARER = [{}, *BEARER]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class _Parser(FlaskParser):
    """webargs' Flask parser, reading JSON strictly, bounding integers, building each schema once.

    JSON bodies go through `strict_loads` (webapp/jsonio.py): what it refuses (a lone surrogate,
    nesting past 64, a 20-digit integer, NaN) is a 400 with the reason under `errors.json`,
    where webargs' own `json.loads` let them through to fail later as a 500. Every integer
    argument, from the body, the query or the form, must fit a signed 64-bit column: beyond
    that it is a 422 naming the field (SQLite raises OverflowError on such a bound parameter).

    Given a schema class (`@blp.arguments(PostListArgs)`, the pagination parameters), webargs
    builds a new instance on every request, deep-copying its fields; a marshmallow 4 schema keeps
    no per-load state, so one instance per class serves every request and thread.
    """

    def __init__(self):
        super().__init__()
        self._schemas: dict[type, Schema] = {}

    def load_json(self, req, schema):
        if not req.is_json:
            return missing
        if "delta_json" in g:  # read strictly already (webapp/rest/api.py refuse_unreadable_json)
            return g.delta_json
        data = req.get_data(cache=True)
        if not data:
            return missing
        try:
            return strict_loads(data)
        except JSONInputError as exc:
            abort(400, messages={"json": [str(exc)]})

    def parse(self, *args, **kwargs):
        parsed = super().parse(*args, **kwargs)
        out_of_range = _out_of_range(parsed)
        if out_of_range:
            message = f"Must be between {INT64_MIN} and {INT64_MAX}."
            abort(422, messages={"args": {field: [message] for field in out_of_range}})
        return parsed

    def _get_schema(self, argmap, req):
        if isinstance(argmap, type) and issubclass(argmap, Schema):
            if argmap not in self._schemas:
                self._schemas[argmap] = argmap()
            return self._schemas[argmap]
        return super()._get_schema(argmap, req)


def _out_of_range(value, name: str = "_schema") -> list[str]:
    """The fields (dotted) holding an integer past 64 bits, in parsed arguments."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [] if INT64_MIN <= value <= INT64_MAX else [name]
    if isinstance(value, dict):
        return [field for key, item in value.items()
                for field in _out_of_range(item, key if name == "_schema" else f"{name}.{key}")]
    if isinstance(value, (list, tuple)):
        return [field for item in value for field in _out_of_range(item, name)]
    return []


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with `If-Match` honoured when sent but not required (PRODUCT.md).

    `check_etag` compares only when the client sent If-Match (412 on a stale one); without it
    there is no 428, and the OpenAPI documents the header as optional.
    """

    ARGUMENTS_PARSER = PAGINATION_ARGUMENTS_PARSER = _Parser()

    def _check_precondition(self):
        pass

    @staticmethod
    def _make_pagination_metadata(page, page_size, item_count):
        """flask-smorest's X-Pagination fields, without the schema it builds per request to copy them."""
        if item_count == 0:
            return {"total": 0, "total_pages": 0}
        last_page = (item_count - 1) // page_size + 1
        metadata = {"total": item_count, "total_pages": last_page, "first_page": 1, "last_page": last_page}
        if page <= last_page:
            metadata["page"] = page
            if page > 1:
                metadata["previous_page"] = page - 1
            if page < last_page:
                metadata["next_page"] = page + 1
        return metadata

    def _set_pagination_metadata(self, page_params, result, headers):
        """flask-smorest's X-Pagination, plus what our totals mean.

        Lists whose total may be large (posts) count exactly up to a bound and estimate beyond
        it: then `total` is approximate and `"total_is_estimate": true` says so. A request by
        `cursor` has no page number: its X-Pagination carries only `total` (and that flag).
        """
        result, headers = super()._set_pagination_metadata(page_params, result, headers)
        if g.get("pagination_by_cursor") or g.get("pagination_estimate"):
            metadata = json.loads(headers[self.PAGINATION_HEADER_NAME])
            if g.get("pagination_by_cursor"):
                metadata = {"total": metadata["total"]}
            if g.get("pagination_estimate"):
                metadata["total_is_estimate"] = True
            headers[self.PAGINATION_HEADER_NAME] = json.dumps(metadata)
        return result, headers

    def check_etag(self, etag_data, etag_schema=None):
        _get_etag_ctx()["etag_checked"] = True
        if not request.if_match or request.if_match.star_tag:
            return
        if etag_schema is not None:
            etag_data = resolve_schema_instance(etag_schema).dump(etag_data)
        if self._body_etag(jsonify(etag_data).get_data()) not in request.if_match:
            raise PreconditionFailed

    @staticmethod
    def _body_etag(body: bytes, pagination: str | None = None) -> str:
        """SHA-1 of the JSON body as sent, and of X-Pagination on a list."""
        digest = hashlib.sha1(body, usedforsecurity=False)
        if pagination:
            digest.update(pagination.encode())
        return digest.hexdigest()

    def _set_etag_in_response(self, response):
        """The ETag of a read: a hash of the bytes sent, where flask-smorest JSON-encodes the data
        a second time to hash it (~2 % of a `/users/me`; `make bench-instructions`). A write's
        If-Match is compared (`check_etag`) with the hash of the body a read returns now.
        """
        if request.method in self.METHODS_ALLOWING_SET_ETAG:
            etag = self._body_etag(response.get_data(), response.headers.get(self.PAGINATION_HEADER_NAME))
            self._check_not_modified(etag)
            response.set_etag(etag)

    def _prepare_etag_doc(self, doc, doc_info, **kwargs):
        doc = super()._prepare_etag_doc(doc, doc_info, **kwargs)
        doc.get("responses", {}).pop(428, None)
        doc["parameters"] = [
            {**IF_MATCH_HEADER, "required": False,
             "description": "Optional: the ETag you read; a stale one gets 412 and nothing changes."}
            if param == "IF_MATCH" else param
            for param in doc.get("parameters", [])
        ]
        return doc


def authenticated(blp):
    """`@authenticated(blp)`: require an access token and mark the operation in OpenAPI."""
    def decorator(func):
        return blp.doc(security=BEARER)(jwt_required()(func))
    return decorator


def viewer():
    """The signed-in user of this request (loaded with the token check)."""
    return get_current_user()


def optional_viewer():
    """The signed-in user when a token came with the request, else None; a bad token is still 401."""
    verify_jwt_in_request(optional=True)
    return get_current_user() if get_jwt() else None


def session_id() -> str:
    return get_jwt()["sid"]


def only_files() -> None:
    """Multipart uploads take their documented file fields only: extra form fields are a 422."""
    from webapp.errors import Invalid

    if request.form:
        raise Invalid("Validation failed.", errors={key: ["Unknown field."] for key in request.form})


def client_facts() -> dict:
    return {"user_agent": request.headers.get("User-Agent", ""), "ip": request.remote_addr or ""}
