"""The GraphQL door's error table: domain errors become `extensions.code`, the rest is masked."""
from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from strawberry.extensions import SchemaExtension

from webapp import errors as domain

log = logging.getLogger("webapp.graphql")

CODES = {
    domain.Unauthenticated: "UNAUTHENTICATED",
    domain.Forbidden: "FORBIDDEN",
    domain.NotFound: "NOT_FOUND",
    domain.Invalid: "BAD_USER_INPUT",
    domain.BadToken: "BAD_USER_INPUT",
    domain.Conflict: "CONFLICT",
    domain.RateLimited: "RATE_LIMITED",
    domain.Unavailable: "SERVICE_UNAVAILABLE",
    domain.PayloadTooLarge: "BAD_USER_INPUT",
    domain.UnsupportedMediaType: "BAD_USER_INPUT",
    domain.PreconditionFailed: "PRECONDITION_FAILED",
}
INTERNAL = "INTERNAL_SERVER_ERROR"
SUGGESTION = "Did you mean"


def code_for(error: GraphQLError) -> str:
    original = error.original_error
    if original is None:
        return "BAD_USER_INPUT"  # parse and validation errors: the document itself is wrong
    if isinstance(original, GraphQLError) and error.path is None:
        return "BAD_USER_INPUT"  # a variable missing or of the wrong type: coerced before execution
    for cls, code in CODES.items():
        if isinstance(original, cls):
            return code
    if isinstance(original, OperationalError):
        return "SERVICE_UNAVAILABLE"
    if isinstance(original, (StaleDataError, IntegrityError)):
        return "CONFLICT"  # another request changed or deleted the row meanwhile
    if isinstance(original, DBAPIError) and type(original.orig).__name__ in domain.DB_INPUT_ERRORS:
        return "BAD_USER_INPUT"
    if isinstance(original, (ValueError, TypeError, OverflowError)) and error.path is None:
        return "BAD_USER_INPUT"
    return INTERNAL


class ErrorCodes(SchemaExtension):
    """Give every error its code and, in production, hide what internal errors say."""

    production = False

    def on_operation(self):
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [shape(error, self.production) for error in result.errors]


def shape(error: GraphQLError, production: bool) -> GraphQLError:
    """The error as the client sees it: its code, a safe message, no schema hints in production."""
    code = code_for(error)
    extensions = dict(error.extensions or {})
    extensions["code"] = code
    original = error.original_error
    message = error.message
    if isinstance(original, domain.DomainError):
        message = original.message
        if original.errors:
            extensions["errors"] = original.errors
        if isinstance(original, domain.RateLimited):
            extensions["retryAfter"] = original.retry_after
    elif code == "SERVICE_UNAVAILABLE":
        message = domain.Unavailable.default_message
    elif code == INTERNAL and production:
        message = "Internal server error."
    elif code == "CONFLICT":
        message = domain.CONCURRENT_CHANGE
    elif code == "BAD_USER_INPUT" and isinstance(original, DBAPIError):
        message = domain.UNSTORABLE_INPUT
    if production and SUGGESTION in message:
        # graphql-core suggests names for unknown arguments, types, enum values and input fields
        # too, which strawberry's disable_field_suggestions leaves in: no schema hints in production
        message = message.split(SUGGESTION, 1)[0].rstrip()
    return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions,
                        path=error.path, original_error=original, extensions=extensions)


class DeltaSchema(strawberry.Schema):
    def __init__(self, *args, production: bool = False, **kwargs):
        codes = type("ProductionErrorCodes" if production else "ErrorCodes", (ErrorCodes,),
                     {"production": production})  # a class: strawberry builds one per request
        kwargs.setdefault("extensions", [])
        kwargs["extensions"] = [*kwargs["extensions"], codes]
        super().__init__(*args, **kwargs)
        self.production = production

    def execute_sync(self, *args, **kwargs):
        """Also shape the errors that skip the extensions: a syntax error is raised while parsing."""
        result = super().execute_sync(*args, **kwargs)
        if result.errors:
            result.errors = [error if error.extensions and "code" in error.extensions
                             else shape(error, self.production) for error in result.errors]
        return result

    def process_errors(self, errors, execution_context=None) -> None:
        """Log internal errors with their traceback; expected domain errors are not news."""
        for error in errors:
            if code_for(error) == INTERNAL:
                log.error("graphql error: %s", error.message, exc_info=error.original_error)
