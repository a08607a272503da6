"""flask-smorest (setup.cfg: <0.48): ETags from the bytes sent, optional If-Match, a bounded `page`.

Replaces:
- `EtagMixin._set_etag_in_response(response)` (called by `@blp.etag` after the view) and
  `check_etag`: the ETag is a hash of the JSON body as sent (and X-Pagination), where
  flask-smorest JSON-encodes the data a second time to hash it — ~2 % of a `/users/me`
  (−0.09 M instructions is what ETags cost in all; `make bench-instructions`). Relies on
  `_check_not_modified(etag)` (304 on If-None-Match) and `_get_etag_ctx()` (marks the check done).
- `EtagMixin._check_precondition()`: If-Match is honoured when sent, never required (PRODUCT.md:
  no 428), and `_prepare_etag_doc` documents it as optional.
- `pagination._pagination_parameters_schema_factory`, the module function `Blueprint.paginate`
  calls at decoration time: flask-smorest leaves `page` unbounded, and a page past 64 bits would
  reach the database (`bound_page_numbers`). No public hook sets the page's bounds. The page
  left out is still 1, but the OpenAPI shows no `default: 1`: a generated client would then
  always send `page`, and a request by `cursor` with a `page` is refused (PRODUCT.md).
- `Api._register_pagination_header()`: the header holds a JSON object; OpenAPI's header
  "schema" would mean a comma list.
(The argument parser's schema-per-class cache uses webargs' public `parse`: webapp/rest/common.py.)
"""
from __future__ import annotations

import hashlib

import flask_smorest
import marshmallow as ma
from flask import jsonify, request
from flask_smorest import pagination
from flask_smorest.etag import IF_MATCH_HEADER, _get_etag_ctx
from flask_smorest.exceptions import PreconditionFailed
from flask_smorest.utils import resolve_schema_instance

_smorest_page_schema = pagination._pagination_parameters_schema_factory


def bound_page_numbers(max_page: int) -> None:
    """Every `@blp.paginate` declared from now on refuses a `page` above `max_page` (422)."""

    def bounded_page_schema(def_page, def_page_size, def_max_page_size):
        base = _smorest_page_schema(def_page, def_page_size, def_max_page_size)

        class PaginationParametersSchema(base):
            # A callable default is applied on load but not documented (apispec's field2default).
            page = ma.fields.Integer(load_default=lambda: def_page, validate=ma.validate.Range(min=1, max=max_page),
                                     metadata={"description": f"Page number ({def_page} when left out). "
                                                              "Do not send it with `cursor`."})

        return PaginationParametersSchema

    pagination._pagination_parameters_schema_factory = bounded_page_schema


class EtagBlueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with `If-Match` honoured when sent but not required (PRODUCT.md).

    `check_etag` compares only when the client sent If-Match (412 on a stale one); without it
    there is no 428, and the OpenAPI documents the header as optional.
    """

    def _check_precondition(self):
        pass

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
        if "parameters" in doc:  # an operation without ETag keeps no empty list
            doc["parameters"] = [
                {**IF_MATCH_HEADER, "required": False,
                 "description": "Optional: the ETag you read; a stale one gets 412 and nothing changes."}
                if param == "IF_MATCH" else param
                for param in doc["parameters"]
            ]
        return doc


class Api(flask_smorest.Api):
    """flask-smorest's Api, documenting X-Pagination as the JSON object it is."""

    def _register_pagination_header(self):
        # The header holds a JSON object; OpenAPI's header "schema" would mean a comma list.
        self.spec.components.header("PAGINATION", {
            "description": "Pagination metadata as JSON: total, total_pages, first_page, last_page, "
                           "page, previous_page, next_page.",
            "schema": {"type": "string"},
        }, lazy=True)
