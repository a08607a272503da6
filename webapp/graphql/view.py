"""The strawberry Flask view: builds the context once per request; GraphiQL from local assets.

Every answer is JSON in GraphQL's shape, refusals included: strawberry's Flask view answers a
request it cannot run (batching, a wrong method or content type, no query, a body that is not
JSON) in plain text; here those are `{"errors": [{"message", "extensions": {"code"}}]}` with the
same status. Bodies and GET variables are decoded by `webapp.jsonio.strict_loads`, so what the
REST door refuses (lone surrogates, deep nesting, huge integers) is refused here the same way.
A document longer than MAX_DOCUMENT_CHARS is refused unparsed: comments and whitespace are not
tokens, so the token limit alone let a 5 MB comment through, parsed (0.6 s) and cached per text.
"""
from __future__ import annotations

import json

from cross_web import FlaskHTTPRequestAdapter, HTTPException
from flask import Request, Response, current_app, render_template, request as current_request
from strawberry.flask.views import GraphQLView
from strawberry.http import GraphQLRequestData

from webapp.graphql.context import Context, build_context
from webapp.graphql.cost import MAX_DOCUMENT_CHARS
from webapp.jsonio import JSONInputError, strict_loads

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
        return Response(render_template("graphiql.html"), content_type="text/html; charset=utf-8")

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
