"""Small pieces every REST blueprint uses: the auth decorator and request facts."""
from __future__ import annotations

import json

from flask import g, request
from marshmallow import Schema, missing
from webargs.flaskparser import FlaskParser, abort

from webapp.auth import current
from webapp.compat.flask_smorest import EtagBlueprint, bound_page_numbers
from webapp.jsonio import JSONInputError, strict_loads
from webapp.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE
from webapp.rest.openapi import error_responses

BEARER = [{"bearerAuth": []}]
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

    def parse(self, argmap, *args, **kwargs):
        if isinstance(argmap, type) and issubclass(argmap, Schema):  # one instance per class
            schema = self._schemas.get(argmap)
            if schema is None:
                schema = self._schemas[argmap] = argmap()
            argmap = schema
        parsed = super().parse(argmap, *args, **kwargs)
        out_of_range = _out_of_range(parsed)
        if out_of_range:
            message = f"Must be between {INT64_MIN} and {INT64_MAX}."
            abort(422, messages={"args": {field: [message] for field in out_of_range}})
        return parsed


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


bound_page_numbers(MAX_PAGE)  # before any blueprint module declares `@blp.paginate`


class Blueprint(EtagBlueprint):
    """flask-smorest's Blueprint with Delta's parser, page sizes and X-Pagination; ETags and the
    optional If-Match come from webapp/compat/flask_smorest.py."""

    ARGUMENTS_PARSER = PAGINATION_ARGUMENTS_PARSER = _Parser()
    # Every list's page sizes (PRODUCT.md: default 20, cap 100 through both doors).
    DEFAULT_PAGINATION_PARAMETERS = {"page": 1, "page_size": DEFAULT_PAGE_SIZE, "max_page_size": MAX_PAGE_SIZE}

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


def operation(blp, operation_id: str, *errors, **doc):
    """`@operation(blp, "createPost", (403, "The email address is not verified yet."), 409)`.

    The operation's stable operationId (the name generated clients give its method) and the errors
    it answers beyond those webapp/rest/openapi.py declares on every operation of its shape; a
    bare status takes the shared description. `doc`: more of the operation, verbatim. One
    `blp.doc`: nothing more runs per request.
    """
    doc = {**doc, "operationId": operation_id}
    if errors:
        doc["responses"] = {**doc.get("responses", {}), **error_responses(*errors)}
    return blp.doc(**doc)


def authenticated(blp):
    """`@authenticated(blp)`: require a bearer token (access or personal) and mark the operation in OpenAPI."""
    def decorator(func):
        return blp.doc(security=BEARER)(current.signed_in(func))
    return decorator


def viewer():
    """The signed-in user of this request (loaded with the token check)."""
    return current.viewer()


def session_id() -> str | None:
    return current.session_id()


def only_files() -> None:
    """Multipart uploads take their documented file fields only: extra form fields are a 422."""
    from webapp.errors import Invalid

    if request.form:
        raise Invalid("Validation failed.", errors={key: ["Unknown field."] for key in request.form})


def client_facts() -> dict:
    return {"user_agent": request.headers.get("User-Agent", ""), "ip": request.remote_addr or ""}
