"""schemathesis hooks for `make fuzz` (tests/fuzz/run.sh).

- Every generated request gets a fresh `Idempotency-Key`: schemathesis would otherwise reuse a
  few values across different bodies, which the API rightly answers with 422 ("key reused with
  a different request"). Replays are tested in tests/test_idempotency.py.
- For GraphQL, schemathesis counts any error without an Apollo "client" code as a server error,
  so the contract's own codes (UNAUTHENTICATED, NOT_FOUND, ...) would all be reported. The check
  below replaces `not_a_server_error` and `positive_data_acceptance` there: a failure is a 5xx, a
  non-JSON body, an error without one of the documented codes, or an INTERNAL_SERVER_ERROR.
"""
import uuid

import schemathesis

DOCUMENTED = {"UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT", "CONFLICT", "RATE_LIMITED"}


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """Runs for every phase (coverage included), unlike the map_* generation hooks."""
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex


@schemathesis.check
def delta_graphql_errors(ctx, response, case):
    if not case.operation.label.startswith(("Query.", "Mutation.")):
        return None
    assert response.status_code < 500, f"server error {response.status_code}"
    body = response.json()
    assert isinstance(body, dict), "the body is not a JSON object"
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code in DOCUMENTED, f"error with code {code!r}: {error.get('message')}"
    return None
