"""The strawberry Flask view: builds the context once per request; GraphiQL from local assets.

Every answer is JSON in GraphQL's shape, refusals included: strawberry's Flask view answers a
request it cannot run (batching, a wrong method or content type, no query, a body that is not
JSON) in plain text; here those are `{"errors": [{"message", "extensions": {"code"}}]}` with the
same status. Bodies and GET variables are decoded by `webapp.jsonio.strict_loads`, so what the
REST door refuses (lone surrogates, deep nesting, huge integers) is refused here the same way.
A document longer than MAX_DOCUMENT_CHARS is refused unparsed: comments and whitespace are not
tokens, so the token limit alone let a 5 MB comment through, parsed (0.6 s) and cached per text.
A subscription is refused (400, BAD_USER_INPUT) with where to run it: the realtime process's
WebSocket (webapp/realtime), which GraphiQL's page is pointed at too.
"""
from __future__ import annotations

import json

from cross_web import FlaskHTTPRequestAdapter, HTTPException
from flask import Request, Response, current_app, render_template, request as current_request
from strawberry.exceptions import MissingQueryError
from strawberry.flask.views import GraphQLView
from strawberry.http import GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from webapp.graphql.context import Context, build_context
from webapp.graphql.cost import MAX_DOCUMENT_CHARS
from webapp.jsonio import JSONInputError, strict_loads
from webapp.realtime.urls import streaming_url, websocket_url
from webapp.security import PAGE_CSP

CODES = {404: "NOT_FOUND"}  # any other refusal is the request's mistake
ALLOWED = "GET, POST, OPTIONS"


class _RequestAdapter(FlaskHTTPRequestAdapter):
    @property
    def body(self) -> bytes:
        """The raw bytes: strict_loads says so when they are not UTF-8 (the default decode raised)."""
        return self.request.get_data()


class DeltaGraphQLView(GraphQLView):
    request_adapter_class = _RequestAdapter

    def get_context(self, request: Request, response: Response) -> Context:
        return build_context(request)

    def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL, its subscriptions sent to the realtime process (the page's CSP lets it connect there)."""
        socket = websocket_url(streaming_url(current_app.config, request.host))
        response = Response(render_template("graphiql.html", subscription_url=socket),
                            content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = PAGE_CSP.replace(
            "connect-src 'self'", f"connect-src 'self' {socket.rsplit('/', 1)[0]}")
        return response

    def execute_single(self, request, request_adapter, sub_response, context, root_value, request_data):
        """strawberry's, without subscriptions: those are refused with the address that runs them."""
        allowed = OperationType.from_http(request_adapter.method) - {OperationType.SUBSCRIPTION}
        try:
            return self.schema.execute_sync(
                request_data.query, root_value=root_value, variable_values=request_data.variables,
                context_value=context, operation_name=request_data.operation_name,
                allowed_operation_types=allowed, operation_extensions=request_data.extensions)
        except InvalidOperationTypeError as exc:
            if exc.operation_type != OperationType.SUBSCRIPTION:
                raise HTTPException(400, exc.as_http_error_reason(request_adapter.method)) from None
            url = websocket_url(streaming_url(current_app.config, request.host))
            raise HTTPException(400, f"Subscriptions run over WebSocket (graphql-transport-ws) at {url}, "
                                     "the streaming_url of GET /api/v1/meta.") from None
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from None
        except MissingQueryError:
            raise HTTPException(400, "No GraphQL query found in the request") from None

    def decode_json(self, data: str | bytes) -> object:
        try:
            value = strict_loads(data)
        except JSONInputError as exc:
            raise HTTPException(400, str(exc)) from None
        if not isinstance(value, (dict, list)):
            raise HTTPException(400, "Expected a JSON object: {\"query\": ..., \"variables\": {...}}.")
        return value

    def parse_http_body(self, request):
        data = super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData) and isinstance(data.query, str) \
                and len(data.query) > MAX_DOCUMENT_CHARS:  # padding the token limit does not count
            raise HTTPException(400, f"The query is longer than {MAX_DOCUMENT_CHARS} characters.")
        return data

    def dispatch_request(self):
        if current_request.method == "OPTIONS":  # the app's answer, with the methods that can succeed
            response = current_app.make_default_options_response()
            response.headers["Allow"] = ALLOWED
            return response
        try:
            return self.run(request=current_request)
        except HTTPException as exc:
            return refusal(exc.status_code, exc.reason)


def refusal(status: int, message: str) -> Response:
    """A request the view cannot run, in GraphQL's error shape."""
    body = {"errors": [{"message": message, "extensions": {"code": CODES.get(status, "BAD_USER_INPUT")}}]}
    response = Response(json.dumps(body, separators=(",", ":")), status=status, content_type="application/json")
    if status == 405:
        response.headers["Allow"] = ALLOWED
    return response
