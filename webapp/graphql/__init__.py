"""The GraphQL door: strawberry types and resolvers over the same services as REST."""


def register_graphql(app) -> None:
    from webapp.graphql.view import DeltaGraphQLView
    from webapp.graphql.schema import build_schema

    view = DeltaGraphQLView.as_view(
        "graphql",
        schema=build_schema(production=app.config.get("ENV_NAME") == "production",
                            max_depth=app.config["GRAPHQL_MAX_DEPTH"],
                            max_aliases=app.config["GRAPHQL_MAX_ALIASES"],
                            max_tokens=app.config["GRAPHQL_MAX_TOKENS"]),
        graphql_ide="graphiql" if app.config["GRAPHQL_IDE"] else None,
    )
    app.add_url_rule("/graphql", view_func=view, methods=["GET", "POST"])
