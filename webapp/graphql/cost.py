"""How many objects a GraphQL document could return, counted before it runs.

GitHub's node limit, with Delta's `limit` in the place of `first`/`last`. A document's size is
the number of objects its answer could hold:
- a list field counts its `limit` (a literal or a variable), at most its cap (100); when no
  `limit` is given (left out, or a variable with no value) it counts its cap, as PRODUCT.md
  says — not the smaller default page size, so the size a client sees refused never depends
  on a default that may change; a list with no `limit` argument counts its cap, or the length
  the schema module declares for it (`max_items`); each of its items then counts what it selects;
- an object field counts once per parent item, plus what it selects;
- scalars are free; named and inline fragments are followed.

So `{ posts(limit: 100) { author { name } } }` is 100 posts + 100 authors = 200, and
`{ posts(limit:100) { author { posts(limit:100) { author { posts(limit:100) { id } } } } } }`
is 100 + 100 + 10,000 + 10,000 + 1,000,000 = 1,020,200.

A document is planned once per text (a tree of multipliers, cached; branches that do not
depend on variables folded into numbers) and the plan is evaluated with each request's
variables, so a known document costs a dict lookup. `limit` and `skip` below 0 are refused here
too, with the values the variables give them, before any resolver runs.
"""
from __future__ import annotations

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    VariableNode,
    Visitor,
    build_schema,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    parse,
    visit,
)
from strawberry.extensions import SchemaExtension

from webapp.pagination import MAX_PAGE_SIZE

CAP = MAX_PAGE_SIZE      # every list Delta serves is capped (webapp/pagination.py)
MAX_INT_DIGITS = 19      # a literal longer than this is no Int; validation refuses it
MAX_NUMBER_CHARS = 32    # a longer number literal is refused without echoing it
EXPANSION_BUDGET = 5000  # selections with fragments written out: past it, refused (see too_complex)
MAX_NESTING = 64         # fields, inline fragments and spreads inside one another: past it, refused
TOO_COMPLEX = 10 ** 12   # the size given to a document past the budget
PLAN_CACHE_SIZE = 1024
MAX_DOCUMENT_CHARS = 100_000  # a longer document is refused unparsed (webapp/graphql/view.py)


class Var:
    """A size read from a variable at evaluation time: the client's value, else `default`."""

    __slots__ = ("name", "default", "argument", "cap")

    def __init__(self, name: str, default, argument: str, cap: int | None):
        self.name, self.default, self.argument, self.cap = name, default, argument, cap

    def value(self, variables: dict | None) -> int:
        raw = variables.get(self.name, self.default) if variables else self.default
        if isinstance(raw, bool) or not isinstance(raw, int):
            return CAP if self.cap else 0  # coercion refuses it later; count the worst case
        if raw < 0:
            raise GraphQLError(f"Argument '{self.argument}' must be at least 0; got {raw}.")
        return min(raw, self.cap) if self.cap else 0


class Plan:
    """One document's size: a number, or per operation a tree of (multiplier, children)."""

    __slots__ = ("operations", "error", "too_complex")

    def __init__(self, operations: dict, error: GraphQLError | None = None, too_complex: str | None = None):
        self.operations, self.error, self.too_complex = operations, error, too_complex

    def size(self, variables: dict | None = None, operation_name: str | None = None) -> int:
        """Objects the chosen operation could return; GraphQLError for a negative limit or skip."""
        if self.error is not None:
            raise self.error
        if operation_name in self.operations:
            plans = [self.operations[operation_name]]
        else:
            plans = list(self.operations.values())  # execution refuses an ambiguous one anyway
        return max((_evaluate(plan, variables) for plan in plans), default=0)


def _evaluate(plan, variables) -> int:
    if plan.__class__ is int:
        return plan
    checks, nodes = plan
    for var in checks:
        var.value(variables)
    return nodes if nodes.__class__ is int else _sum(nodes, variables)


def _sum(nodes, variables) -> int:
    total = 0
    for multiplier, children in nodes:
        count = multiplier if multiplier.__class__ is int else multiplier.value(variables)
        inner = children if children.__class__ is int else _sum(children, variables)
        total += count * (1 + inner)
    return total


class Coster:
    """Plans documents against a schema (a mirror built from its SDL) and caches the plans."""

    def __init__(self, sdl: str, max_items: dict[tuple[str, str], int] | None = None,
                 max_tokens: int = 2000):
        self.schema: GraphQLSchema = build_schema(sdl)
        self.max_items = max_items or {}
        self.max_tokens = max_tokens
        self._plans: dict[str, Plan | None] = {}

    def plan(self, query: str, document: DocumentNode | None = None) -> Plan | None:
        """The cached plan for `query` (parsed here unless `document` is given); None if unparsable."""
        try:
            return self._plans[query]
        except KeyError:
            pass
        if len(query) > MAX_DOCUMENT_CHARS:
            return None  # the view refuses it unparsed
        if document is None:
            try:
                document = parse(query, max_tokens=self.max_tokens, no_location=True)
            except GraphQLError:
                document = None
        if document is None:
            plan = None
        elif (reason := too_complex(document)) is not None:
            plan = Plan({None: TOO_COMPLEX}, too_complex=reason)
        else:
            plan = _Planner(self, document).plan()
        if len(self._plans) >= PLAN_CACHE_SIZE:
            try:
                del self._plans[next(iter(self._plans))]  # oldest first
            except (KeyError, StopIteration, RuntimeError):  # another thread got there first
                pass
        self._plans[query] = plan
        return plan

    def size(self, query: str | None, variables: dict | None = None, operation_name: str | None = None,
             document: DocumentNode | None = None) -> int:
        """Objects the document could return (0 when it does not parse; the view refuses it)."""
        if not isinstance(query, str):
            return 0
        plan = self.plan(query, document)
        if plan is None:
            return 0
        try:
            return plan.size(variables if isinstance(variables, dict) else None, operation_name)
        except GraphQLError:
            return 0  # a negative limit: refused before execution, no objects


class _Planner:
    def __init__(self, coster: Coster, document: DocumentNode):
        self.coster = coster
        self.fragments = {d.name.value: d for d in document.definitions
                          if d.kind == "fragment_definition"}
        self.operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        self.defaults: dict = {}
        self.checks: list = []
        self.error: GraphQLError | None = None

    def plan(self) -> Plan:
        operations = {}
        for operation in self.operations:
            root = self.coster.schema.get_root_type(operation.operation)
            self.defaults = {d.variable.name.value: _literal(d.default_value)
                             for d in operation.variable_definitions or ()}
            self.checks = []
            nodes = self._selections(operation.selection_set, root, set()) if root else ()
            name = operation.name.value if operation.name else None
            if self.checks or nodes.__class__ is not int:
                plan = (tuple(self.checks), nodes)
            else:
                plan = nodes
            operations.setdefault(name, plan)
        return Plan(operations, self.error)

    def _selections(self, selection_set, parent, fragments_seen: frozenset | set):
        """The (multiplier, children) pairs of a selection set, folded to an int when constant."""
        nodes = []
        self._collect(selection_set, parent, fragments_seen, nodes)
        if all(m.__class__ is int and c.__class__ is int for m, c in nodes):
            return sum(m * (1 + c) for m, c in nodes)
        return tuple(nodes)

    def _collect(self, selection_set, parent, fragments_seen, nodes: list) -> None:
        if selection_set is None or not isinstance(parent, GraphQLObjectType):
            return  # interfaces and unions: Delta has none; validation refuses what does not fit
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                node = self._field(selection, parent, fragments_seen)
                if node is not None:
                    nodes.append(node)
            elif isinstance(selection, InlineFragmentNode):
                inner = parent
                if selection.type_condition is not None:
                    inner = self.coster.schema.get_type(selection.type_condition.name.value)
                self._collect(selection.selection_set, inner, fragments_seen, nodes)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in fragments_seen:
                    continue  # unknown or cyclic: validation refuses the document
                inner = self.coster.schema.get_type(fragment.type_condition.name.value)
                self._collect(fragment.selection_set, inner, fragments_seen | {name}, nodes)

    def _field(self, node: FieldNode, parent: GraphQLObjectType, fragments_seen):
        field = parent.fields.get(node.name.value)
        if field is None:
            return None
        label = f"{parent.name}.{node.name.value}"
        for name in ("skip", "limit"):
            if name in field.args:
                self._check(node, name, _default(field.args[name]), label)
        if not is_composite_type(get_named_type(field.type)):
            return None
        children = self._selections(node.selection_set, get_named_type(field.type), fragments_seen)
        if not isinstance(get_nullable_type(field.type), GraphQLList):
            return 1, children
        cap = self.coster.max_items.get((parent.name, node.name.value), CAP)
        if "limit" not in field.args:
            return cap, children
        return self._size(node, _default(field.args["limit"]), f"{label}(limit:)", min(cap, CAP)), children

    def _argument(self, node: FieldNode, name: str):
        for argument in node.arguments or ():
            if argument.name.value == name:
                return argument.value
        return None

    def _size(self, node: FieldNode, default, label: str, cap: int):
        value = self._argument(node, "limit")
        if isinstance(value, VariableNode):
            fallback = self.defaults.get(value.name.value, cap)
            return Var(value.name.value, fallback, label, cap)
        number = _literal(value) if value is not None else cap
        if isinstance(number, bool) or not isinstance(number, int):
            return cap
        return max(0, min(number, cap))

    def _check(self, node: FieldNode, name: str, default, label: str) -> None:
        """`limit` and `skip` must not be negative: literals now, variables at evaluation."""
        value = self._argument(node, name)
        argument = f"{label}({name}:)"
        if isinstance(value, VariableNode):
            self.checks.append(Var(value.name.value, self.defaults.get(value.name.value, default),
                                   argument, None))
            return
        number = _literal(value)
        if isinstance(number, int) and number < 0 and self.error is None:
            self.error = GraphQLError(f"Argument '{argument}' must be at least 0; got {number}.")


def too_complex(document: DocumentNode) -> str | None:
    """Why the document is refused before validation, if it is: its shape with fragments written out.

    Spreading a fragment twice that spreads the next twice, forty deep, is a 2 KB document of
    2^40 selections, and a chain of 240 fragments each spreading the next nests as deep:
    strawberry's depth and alias limiters walk every selection recursively (a worker lost for
    good; a RecursionError). Both are measured here in linear time, each fragment once.
    """
    fragments = {d.name.value: d for d in document.definitions if d.kind == "fragment_definition"}
    shapes: dict[str, tuple[int, int]] = {}

    def shape(selection_set, path: frozenset) -> tuple[int, int]:
        """(selections, nesting) of a selection set."""
        total, deepest = 0, 0
        for selection in selection_set.selections if selection_set else ():
            inner = (0, 0)
            if isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in path:  # a cycle: validation refuses it
                    if name not in shapes:
                        shapes[name] = shape(fragments[name].selection_set, path | {name})
                    inner = shapes[name]
            else:
                inner = shape(selection.selection_set, path)
            total += 1 + inner[0]
            deepest = max(deepest, 1 + inner[1])
            if deepest > MAX_NESTING:
                break
        return total, deepest

    selections, nesting = 0, 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            size, depth = shape(definition.selection_set, frozenset())
            selections, nesting = selections + size, max(nesting, depth)
    if nesting > MAX_NESTING:
        return f"This query nests fields and fragments more than {MAX_NESTING} levels deep."
    if selections > EXPANSION_BUDGET:
        return f"This query expands to more than {EXPANSION_BUDGET} fields through its fragments."
    return None


def _default(argument):
    """An argument's default when it is an Int (graphql-core keeps a literal or a value)."""
    default = getattr(argument, "default", None)
    if default is None:
        return argument.default_value
    return default.value if isinstance(default.value, int) else _literal(default.literal)


def _literal(value):
    """An Int literal's value (None for anything else, or for one too long to be an Int)."""
    if isinstance(value, IntValueNode) and len(value.value.lstrip("-")) <= MAX_INT_DIGITS:
        return int(value.value)
    return None


class NodeLimit(SchemaExtension):
    """Refuse, after validation and before any resolver, a document that could return too much.

    Listed after the validation cache: its errors are already set when this runs. The schema
    carries `coster` and `max_nodes` (see `build_schema`).
    """

    def on_parse(self):
        yield
        context = self.execution_context  # parsed (a syntax error does not come back here)
        if isinstance(context.query, str) and context.graphql_document is not None:
            plan = context.schema.coster.plan(context.query, context.graphql_document)
            if plan is not None and plan.too_complex:  # refused before the validation rules walk it
                raise GraphQLError(plan.too_complex)

    def on_validate(self):
        context = self.execution_context
        if context.pre_execution_errors:
            context.pre_execution_errors = _readable(context.pre_execution_errors, context.graphql_document)
        elif isinstance(context.query, str):
            schema = context.schema
            plan = schema.coster.plan(context.query, context.graphql_document)
            try:
                size = plan.size(context.variables if isinstance(context.variables, dict) else None,
                                 context.operation_name) if plan else 0
            except GraphQLError as error:
                context.pre_execution_errors = [error]
            else:
                if size > schema.max_nodes:
                    context.pre_execution_errors = [GraphQLError(
                        f"This query could return up to {size} objects, more than the limit of "
                        f"{schema.max_nodes}: ask for fewer with `limit`, or split it.",
                        extensions={"nodes": size, "maxNodes": schema.max_nodes})]
        yield


def _readable(errors: list, document: DocumentNode | None) -> list:
    """An over-long number literal answered in a sentence, not echoed (with Python's advice)."""
    if document is None:
        return errors
    long = {}

    class Find(Visitor):
        def enter_int_value(self, node, *args):
            if len(node.value) > MAX_NUMBER_CHARS:
                long[id(node)] = node

        enter_float_value = enter_int_value

    visit(document, Find())
    if not long:
        return errors
    kept = [error for error in errors if not any(id(node) in long for node in error.nodes or ())]
    return kept + [GraphQLError(f"Number literal of {len(node.value)} characters: at most {MAX_NUMBER_CHARS}.",
                                nodes=[node]) for node in long.values()]
