"""The REST door's Api (flask-smorest), with Delta's one error envelope for every failure.

`{"code", "status", "message", "errors"?}` for HTTP errors, webargs validation,
domain errors raised by services, database outages (503) and unexpected errors (500).
Two guards run before any view: a URL that is not percent-encoded UTF-8 and an /api JSON
body that `strict_loads` refuses are 400s here, instead of 500s somewhere later.

The Api object is built here, in the door, not in webapp/extensions.py: it is the REST door
(blueprints, OpenAPI, the HTTP error mapping), nothing below the doors uses it, and the
envelope it answers with lives with the errors (webapp/errors.py).
"""
from __future__ import annotations

import logging
import re
from urllib.parse import unquote_to_bytes

from flask import current_app, g, request
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, InternalServerError

from webapp import errors as domain
from webapp.compat.flask_smorest import Api
from webapp.errors import envelope
from webapp.jsonio import JSONInputError, strict_loads
from webapp.rest.openapi import ContractPlugin
from webapp.rest.schemas.base import ErrorSchema

log = logging.getLogger("webapp.errors")

STATUS_OF = {
    domain.Invalid: 422,
    domain.Unauthenticated: 401,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.BadToken: 400,
    domain.RateLimited: 429,
    domain.Unavailable: 503,
    domain.PayloadTooLarge: 413,
    domain.UnsupportedMediaType: 415,
    domain.PreconditionFailed: 412,
}


def flatten(errors) -> dict:
    """webargs nests messages by location ({"json": {"email": [...]}}); clients want fields."""
    if not isinstance(errors, dict):
        return {"_schema": errors}
    flat: dict = {}
    for location, messages in errors.items():
        if isinstance(messages, dict):
            flat.update(messages)
        else:
            flat[location] = messages
    return flat


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
BAD_URL = "The URL is not valid percent-encoded UTF-8."


def refuse_unreadable_url():
    """400 for a path or query string that is not percent-encoded UTF-8 (`%ff`, `%ED%A0%80`, `%zz`).

    Werkzeug would carry on with U+FFFD in the path or the escapes kept as text in the
    arguments; refusing says plainly what is wrong. GraphQL answers for itself (its own shape).
    """
    environ = request.environ
    query, path = environ.get("QUERY_STRING", ""), environ.get("PATH_INFO", "")
    if "%" not in query and query.isascii() and path.isascii():  # nearly every request
        return None
    if request.path == "/graphql":
        return None
    try:
        if _BAD_ESCAPE.search(query):
            raise ValueError(query)
        unquote_to_bytes(query.encode("latin-1")).decode("utf-8")
        path.encode("latin-1").decode("utf-8")  # the server has already decoded the escapes
    except (UnicodeError, ValueError):
        return envelope(400, BAD_URL, {"url": [BAD_URL]}), 400
    return None


BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})  # reads: no body to check (and they are the hot path)


def refuse_unreadable_json():
    """Read an /api JSON body strictly before any view or hook does (400 in the envelope when refused).

    Every REST route is covered, whichever parser its blueprint uses: webargs' stock parser
    would hand a 100,000-deep array or a 5,000-digit integer to `json.loads` and fail with a
    500. The parsed value is kept for the REST parser (webapp/rest/common.py) to reuse.
    """
    if request.method in BODILESS or not request.path.startswith("/api/") or not request.is_json:
        return None
    data = request.get_data(cache=True)
    if not data:
        return None
    try:
        g.delta_json = strict_loads(data)
    except JSONInputError as exc:
        message = str(exc)
        return envelope(400, message, {"json": [message]}), 400
    return None


def refuse_unreadable_input():
    """Both guards as one hook (one hook call less on every request)."""
    return refuse_unreadable_url() or refuse_unreadable_json()


def install_input_guards(app) -> None:
    """Register the guards; called after the rate limiter's hook, so refused input still counts."""
    app.before_request(refuse_unreadable_input)


class RestApi(Api):
    ERROR_SCHEMA = ErrorSchema  # the envelope, with its required fields, as OpenAPI's `Error`

    def init_app(self, app, *, spec_kwargs=None):
        """flask-smorest's set-up (its HTTPException handler included), then the rest of the table.

        The OpenAPI document gets the contract plugin (webapp/rest/openapi.py) besides the caller's.
        """
        spec_kwargs = dict(spec_kwargs or {})
        spec_kwargs["extra_plugins"] = [*spec_kwargs.get("extra_plugins", ()), ContractPlugin()]
        super().init_app(app, spec_kwargs=spec_kwargs)
        app.register_error_handler(domain.DomainError, self.handle_domain_error)
        app.register_error_handler(OperationalError, self.handle_database_down)
        app.register_error_handler(StaleDataError, self.handle_concurrent_change)
        app.register_error_handler(IntegrityError, self.handle_concurrent_change)
        app.register_error_handler(DBAPIError, self.handle_database_error)
        app.register_error_handler(OverflowError, self.handle_unstorable_input)
        app.register_error_handler(UnicodeEncodeError, self.handle_unstorable_input)
        app.register_error_handler(Exception, self.handle_unexpected)

    def handle_http_exception(self, error: HTTPException):
        if error.code == 429 and request.path == "/graphql":
            body = {"data": None, "errors": [{"message": "Too many requests.",
                                              "extensions": {"code": "RATE_LIMITED"}}]}
            return body, 429
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or data.get("messages")
        if errors:
            errors = flatten(errors)
        message = data.get("message")
        if not message and error.code == 400 and errors and isinstance(errors.get("json"), list):
            message = " ".join(errors["json"])
        if not message:
            message = "Validation failed." if error.code == 422 and errors else error.description
        headers = dict(data.get("headers") or {})
        if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        return envelope(error.code, message, errors), error.code, headers

    def handle_domain_error(self, error: domain.DomainError):
        code = next((status for cls, status in STATUS_OF.items() if isinstance(error, cls)), 400)
        headers = {}
        if isinstance(error, domain.RateLimited):
            headers["Retry-After"] = str(error.retry_after)
        if code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return envelope(code, error.message, error.errors or None), code, headers

    def handle_database_down(self, error):
        log.warning("database unavailable: %s", error.__class__.__name__)
        headers = {"Retry-After": "5"}
        if request.path == "/graphql":  # the token check runs before strawberry: answer in its shape
            body = {"data": None, "errors": [{"message": domain.Unavailable.default_message,
                                              "extensions": {"code": "SERVICE_UNAVAILABLE"}}]}
            return body, 503, headers
        return envelope(503, domain.Unavailable.default_message), 503, headers

    def handle_concurrent_change(self, error):
        # Another request changed or deleted the row between our read and our write.
        log.info("concurrent change: %s", type(error).__name__)
        return envelope(409, domain.CONCURRENT_CHANGE), 409

    def handle_database_error(self, error: DBAPIError):
        # Input the database refuses (a NUL byte, an out-of-range number) is the client's.
        if type(getattr(error, "orig", error)).__name__ in domain.DB_INPUT_ERRORS:
            return envelope(422, domain.UNSTORABLE_INPUT), 422
        return self.handle_unexpected(error)

    def handle_unstorable_input(self, error: Exception):
        """A value no column can hold (an integer past 64 bits bound for SQLite, a lone surrogate).

        The parsers refuse these up front; this is the net for one that slips past them, logged
        with its traceback so the gap can be closed.
        """
        if isinstance(error, UnicodeEncodeError) and "surrogates" not in str(error.reason):
            return self.handle_unexpected(error)
        log.warning("unstorable input reached the database layer", exc_info=error)
        return envelope(422, domain.UNSTORABLE_INPUT), 422

    def handle_unexpected(self, error: Exception):
        if isinstance(error, HTTPException):
            return self.handle_http_exception(error)
        log.exception("unhandled error", exc_info=error)
        if current_app.debug and not current_app.testing:
            raise error
        return envelope(500, InternalServerError.description), 500


api = RestApi()  # unbound; `create_app` attaches it
