"""The GraphQL door: strawberry types and resolvers over the same services as REST."""


def register_graphql(app) -> None:
    from webapp.graphql.view import DeltaGraphQLView
    from webapp.graphql.schema import build_schema

    schema = build_schema(production=app.config.get("ENV_NAME") == "production",
                          max_depth=app.config["GRAPHQL_MAX_DEPTH"],
                          max_aliases=app.config["GRAPHQL_MAX_ALIASES"],
                          max_tokens=app.config["GRAPHQL_MAX_TOKENS"],
                          max_nodes=app.config["GRAPHQL_MAX_NODES"])
    view = DeltaGraphQLView.as_view("graphql", schema=schema,
                                    graphql_ide="graphiql" if app.config["GRAPHQL_IDE"] else None)
    # Every method reaches the view, so a wrong one is answered in GraphQL's error shape too.
    app.add_url_rule("/graphql", view_func=view, methods=["GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE"])
    # What the default rate limit charges a request by (webapp/ratelimit_cost.py: document_cost), so
    # the limiter needs no import of this door: the objects the document could return.
    app.extensions["delta_graphql_size"] = schema.coster.size
    app.extensions["delta_graphql_schema"] = schema  # what schema.graphql is checked against
