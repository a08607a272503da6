"""Domain errors, and the error envelope every HTTP answer of a failure uses.

Services raise the errors; each door (REST, GraphQL) maps them once. The envelope
`{code, status, message, errors?}` is here, not in the REST door, so the layers below the doors
that answer on their own (idempotency's replays and refusals) build the same body.
"""
from __future__ import annotations

from werkzeug.http import HTTP_STATUS_CODES


# Database errors caused by what the client sent (a NUL byte, an out-of-range number): 422 / BAD_USER_INPUT.
DB_INPUT_ERRORS = frozenset({"DataError", "NumericValueOutOfRange", "StringDataRightTruncation",
                             "InvalidTextRepresentation", "OverflowError", "CharacterNotInRepertoire"})
UNSTORABLE_INPUT = "The input contains a value that cannot be stored."
CONCURRENT_CHANGE = "The resource was changed or deleted by another request meanwhile; reload and retry."


def envelope(code: int, message: str, errors: dict | None = None) -> dict:
    """The error body: `{code, status, message, errors?}` (PRODUCT.md)."""
    body = {"code": code, "status": HTTP_STATUS_CODES.get(code, "Error"), "message": message}
    if errors:
        body["errors"] = errors
    return body


class DomainError(Exception):
    """Base class: a message for the client and optional per-field errors."""

    default_message = "Request failed."

    def __init__(self, message: str | None = None, errors: dict | None = None):
        self.message = message or self.default_message
        self.errors = errors or {}
        super().__init__(self.message)


class Invalid(DomainError):
    default_message = "Invalid input."


class Unauthenticated(DomainError):
    default_message = "Authentication required."


class Forbidden(DomainError):
    default_message = "You are not allowed to do this."


class NotFound(DomainError):
    default_message = "Not found."


class Conflict(DomainError):
    default_message = "Conflict with the current state."


class BadToken(DomainError):
    """A single-use token (verification, reset) that is unknown, expired or spent."""

    default_message = "The token is invalid or has expired."


class RateLimited(DomainError):
    default_message = "Too many requests."

    def __init__(self, message: str | None = None, retry_after: int = 60):
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    default_message = "A backing service is unavailable; try again shortly."


class PayloadTooLarge(DomainError):
    default_message = "The upload is too large."


class UnsupportedMediaType(DomainError):
    default_message = "This media type is not supported."


class PreconditionFailed(DomainError):
    default_message = "The resource has changed since you read it (stale ETag)."
