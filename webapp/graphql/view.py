"""The strawberry Flask view: builds the context once per request; GraphiQL from local assets."""
from __future__ import annotations

from flask import Request, Response, render_template
from strawberry.flask.views import GraphQLView

from webapp.graphql.context import Context, build_context


class DeltaGraphQLView(GraphQLView):
    def get_context(self, request: Request, response: Response) -> Context:
        return build_context(request)

    def render_graphql_ide(self, request: Request) -> Response:
        return Response(render_template("graphiql.html"), content_type="text/html; charset=utf-8")
