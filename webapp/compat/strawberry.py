"""strawberry (setup.cfg: <0.342): plain graphql-core resolvers for the fields a list repeats.

Replaces: the resolver strawberry builds around a field with a Python resolver, on the
graphql-core schema it keeps as `Schema._schema` (each `GraphQLField.resolve`). On every call
that wrapper builds strawberry's `Info`, converts the arguments (`get_arguments`) and chains the
field extensions with `functools.reduce`/`partial`, even when a field has none: ~26 k
instructions a call (measured: strawberry answering the nested list from memory, `Post.author`
as a resolver rather than an attribute, +2.6 M for its 100 calls). A list field pays it once per
item. Only fields that need none of it are given here — no permission classes, no field
extensions, arguments that are plain scalars — and graphql-core calls the function with its own
`GraphQLResolveInfo`, whose `.context` is the very context object, and the arguments by their
GraphQL names. The strawberry field keeps its resolver for the SDL, and it is what runs if this
seam is left out. Gain: −4.35 M instructions per `make bench` nested list (43.75 M → 39.40 M;
its 100 `Post.author` and 20 `User.posts` calls; `make bench-instructions`).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from contextvars import ContextVar

import strawberry
from graphql import print_ast
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


def resolve_directly(schema: strawberry.Schema, resolvers: dict[tuple[str, str], Callable]) -> None:
    """graphql-core calls `resolvers[(type name, field name)](source, info, **arguments)` itself."""
    type_map = schema._schema.type_map
    for (type_name, field_name), resolve in resolvers.items():
        type_map[type_name].fields[field_name].resolve = resolve


SHARED: ContextVar[SharedResults] = ContextVar("delta_shared")  # the running operation's executor, once shared


def kept_result(root_value) -> object | None:
    """The result this operation's task already has for `root_value` (a shared event), else None.

    A subscription resolver that finds one need not yield the event through strawberry's
    per-result layers: the result, and so its encoded payload, is the one its first subscriber got."""
    shared = SHARED.get(None)
    results = getattr(root_value, "shared_results", None)
    return None if shared is None or results is None else results.get(shared.shared_key)


def shared_executor() -> SharedResults | None:
    """The executor of the operation running in this task, once it has executed a shared event."""
    return SHARED.get(None)


class SharedResults(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, executing a subscription event once for every subscriber alike.

    Replaces: the executor strawberry hands graphql-core (`Schema.execution_context_class`,
    default `StrawberryGraphQLCoreExecutionContext`, from a module strawberry does not export).
    graphql-core copies it per event (`build_per_event_executor`) and executes the selection set
    on the event (`execute_operation`) for each subscriber: ~45 % of a WebSocket delivery. A root
    value with a `shared_results` dict (a public post, whose result depends only on the document
    and its variables) keeps each result without errors under (operation, fragments, variables);
    the next subscriber asking the same gets it without executing. Anything else runs as before.
    """

    shared_key: tuple | None = None

    def build_per_event_executor(self, payload):
        if self.shared_key is None and getattr(payload, "shared_results", None) is not None:
            self.shared_key = (print_ast(self.operation), tuple(map(print_ast, self.fragment_definitions.values())),
                               json.dumps(self.variable_values.coerced, sort_keys=True, default=str))
            SHARED.set(self)  # the operation's task: its resolver finds its kept results through it
        if self.shared_key is not None and self.shared_key in getattr(payload, "shared_results", ()):
            return _Kept(payload.shared_results[self.shared_key])  # graphql-core only runs it
        return super().build_per_event_executor(payload)

    def result_for(self, root_value):
        """This operation's result for the shared event `root_value`: the kept one, or executed now
        as graphql-core's `execute_subscription_event` would; None when it has errors or would
        need awaiting (the caller then lets the event take the full path)."""
        result = self.build_per_event_executor(root_value).execute_operation(False)
        if self.is_awaitable(result):
            getattr(result, "close", lambda: None)()  # never awaited: no warning, nothing ran
            return None
        return None if result.errors else result

    def execute_operation(self, serially=None):
        results = getattr(self.root_value, "shared_results", None)
        if results is None or self.shared_key is None:
            return super().execute_operation(serially)
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            return self._kept(results, result)
        if not result.errors:
            results[self.shared_key] = result
        return result

    async def _kept(self, results: dict, pending):
        result = await pending
        if not result.errors:
            results[self.shared_key] = result
        return result


class _Kept:
    """A per-event executor whose result is known: graphql-core's `execute_subscription_event`
    calls only `execute_operation` on it (a copy of the whole executor costs more)."""

    def __init__(self, result):
        self.result = result

    def execute_operation(self, serially=None):
        return self.result
