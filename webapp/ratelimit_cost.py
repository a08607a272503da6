"""What a request costs against the application rate limit: 1, or a GraphQL document's size.

flask-limiter asks `request_cost` on every request (`application_limits_cost`).
"""
from __future__ import annotations

from flask import current_app, request

from webapp.jsonio import strict_loads


def document_cost(query: object, variables: object = None, operation_name: object = None) -> int:
    """What a GraphQL document is charged: 1 + nodes // 100, where nodes (capped at
    GRAPHQL_MAX_NODES) is how many objects it could return (webapp/graphql/cost.py).

    `{ me { id } }` costs 1, `{ posts(limit: 100) { id } }` 2, a document at the 10,000 limit
    101; one refused for its size is charged as one at the limit. The GraphQL door registers the
    counter in `app.extensions` (this module does not import a door); it plans each document
    text once and caches the plan, so a known document costs a dict lookup.
    """
    size = current_app.extensions.get("delta_graphql_size")
    if size is None or not isinstance(query, str):
        return 1
    nodes = size(query, variables if isinstance(variables, dict) else None,
                 operation_name if isinstance(operation_name, str) else None)
    return 1 + min(nodes, current_app.config["GRAPHQL_MAX_NODES"]) // 100


def request_cost() -> int:
    if request.path != "/graphql":
        return 1
    if request.method == "POST":
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            return document_cost(body.get("query"), body.get("variables"), body.get("operationName"))
        return 1
    if request.method == "GET" and "query" in request.args:
        try:
            variables = strict_loads(request.args["variables"]) if request.args.get("variables") else None
        except ValueError:
            variables = None  # the view refuses it
        return document_cost(request.args["query"], variables, request.args.get("operationName"))
    return 1
