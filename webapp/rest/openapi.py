"""What every operation of /openapi.json declares without each view repeating it.

An apispec plugin (the public `operation_helper`, like webapp/idempotency's) sees each operation
as its path is added and fills in what follows from the operation's shape:
- `security: []` where no token is asked for, so generators and linters see a public operation;
- the errors any operation can answer, each with the `Error` schema: 400 (a URL or a JSON body
  that cannot be read: webapp/rest/api.py), 429 (the application-wide rate limit, with
  Retry-After), 401 where a token is required, 403 on a write that takes a token (a personal
  access token of the read scope is refused every write), 404 where the path names a resource, 413 and 422
  where a body is read, 409 and 422 where an Idempotency-Key is taken;
- responses in status order.
What only some operations answer (403, 409, 412, 415, a 400 for a spent token...) is declared beside
the view, with the operationId (`operation` in webapp/rest/common.py). tests/test_openapi_contract.py
holds the document to this, and Spectral and Redocly lint it (`.spectral.yaml`, `redocly.yaml`).
"""
from __future__ import annotations

from http import HTTPStatus

from apispec import BasePlugin

from webapp.rest.schemas.base import ErrorSchema

RETRY_AFTER = {"description": "Seconds to wait before trying again.", "schema": {"type": "integer", "minimum": 0}}
LOCATION = {"description": "Where the created resource (or the accepted job) can be read.",
            "schema": {"type": "string"}}

# status: (component name, description); registered lazily, so only the ones in use are published.
ERRORS = {
    400: ("BadRequest", "The request cannot be read: a URL that is not percent-encoded UTF-8 or a JSON "
                        "body that is malformed, too deep or holds a number too large."),
    401: ("Unauthenticated", "No access token, or one that is invalid, expired or revoked."),
    403: ("Forbidden", "Signed in, but not allowed to do this."),
    404: ("NotFound", "Nothing there, or nothing this caller may see."),
    409: ("Conflict", "The request conflicts with the current state."),
    412: ("PreconditionFailed", "`If-Match` did not match the current ETag: nothing changed; read it again."),
    413: ("PayloadTooLarge", "The body is larger than the server accepts."),
    415: ("UnsupportedMediaType", "The content is not of a type this operation accepts."),
    422: ("ValidationFailed", "A field is missing, unknown or invalid: `errors` names each one."),
    429: ("RateLimited", "Too many requests: wait `Retry-After` seconds."),
}
COMMON = (400, 429)  # any operation: an unreadable URL or body, the application-wide rate limit
# flask-smorest's own references (`@blp.arguments` adds UNPROCESSABLE_ENTITY) point to ours instead.
SMOREST_NAMES = {HTTPStatus(status).name: name for status, (name, _) in ERRORS.items()}
BODY_METHODS = frozenset({"post", "put", "patch"})
IDEMPOTENCY_KEY = "IdempotencyKey"  # the header's parameter, added by webapp/idempotency's plugin


class ContractPlugin(BasePlugin):
    """Public operations, common errors and ordered responses for every operation (see the module)."""

    def init_spec(self, spec) -> None:
        spec.components.header("Location", LOCATION, lazy=True)
        for status, (name, description) in ERRORS.items():
            response = {"description": description,
                        "content": {"application/json": {"schema": ErrorSchema}}}
            if status == 429:
                response["headers"] = {"Retry-After": RETRY_AFTER}
            spec.components.response(name, response, lazy=True)

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        for method, operation in (operations or {}).items():
            if method not in {"get", "put", "post", "patch", "delete"}:
                continue
            security = operation.setdefault("security", [])
            responses = {code: SMOREST_NAMES.get(response, response) if isinstance(response, str) else response
                         for code, response in operation.setdefault("responses", {}).items()}
            statuses = {_code(code) for code in responses}
            wanted = list(COMMON)
            if any(requirement for requirement in security):
                wanted.append(401)
                if method != "get":  # a read-only personal access token (webapp/auth/permissions.py)
                    wanted.append(403)
            if "{" in (path or ""):
                wanted.append(404)
            if method in BODY_METHODS and "requestBody" in operation:
                wanted += [413, 422]
            if IDEMPOTENCY_KEY in operation.get("parameters", []):  # a key reused or still in use
                wanted += [409, 422]
            for status in wanted:
                if status not in statuses:
                    responses[status] = ERRORS[status][0]
            operation["responses"] = dict(sorted(responses.items(), key=lambda item: _code(item[0])))


def error_responses(*errors) -> dict:
    """OpenAPI responses for `403` (the shared description) or `(403, "why, for this operation")`."""
    responses = {}
    for error in errors:
        status, description = error if isinstance(error, tuple) else (error, None)
        responses[status] = ERRORS[status][0] if description is None else {
            "description": description, "content": {"application/json": {"schema": ErrorSchema}}}
    return responses


def _code(code) -> int:
    """A response key as a number ("default" last)."""
    try:
        return int(code)
    except (TypeError, ValueError):
        return 1000
