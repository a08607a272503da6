"""schemathesis hooks for the GraphQL run.

schemathesis counts any GraphQL error without an Apollo "client" code as a server error,
so the contract's own codes (UNAUTHENTICATED, NOT_FOUND, FORBIDDEN, CONFLICT, ...) would
all be reported. This check replaces `not_a_server_error` and `positive_data_acceptance`
for GraphQL: a failure is a 5xx, a non-JSON body, an error without one of the documented
codes, or an INTERNAL_SERVER_ERROR.
"""
import schemathesis

DOCUMENTED = {"UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT", "CONFLICT", "RATE_LIMITED"}


@schemathesis.check
def delta_graphql_errors(ctx, response, case):
    assert response.status_code < 500, f"server error {response.status_code}"
    body = response.json()
    assert isinstance(body, dict), "the body is not a JSON object"
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code in DOCUMENTED, f"error with code {code!r}: {error.get('message')}"
