"""What every GraphQL domain module shares: partial update inputs, what a field's selection asks for."""
from __future__ import annotations

from enum import Enum

import strawberry
from graphql import FieldNode, FragmentSpreadNode
from strawberry.types.nodes import SelectedField


class PartialInput:
    """An update input whose fields may be left out: `changes()` is what the client sent."""

    def changes(self) -> dict:
        """Only the fields the client sent, as the service's `changes` mapping (enums as their strings)."""
        return {key: value.value if isinstance(value, Enum) else value
                for key, value in vars(self).items() if value is not strawberry.UNSET}


# The Post type's fields that are columns, by their GraphQL names (what `post_columns` reads).
POST_FIELDS = {"id": "id", "title": "title", "content": "content", "published": "published",
               "createdAt": "created_at", "updatedAt": "updated_at"}


def asked(info) -> frozenset[str]:
    """The names of the fields the field being resolved asks its items for, fragments included
    (directives not evaluated: at worst a few more). `info` is strawberry's, or graphql-core's
    own for the fields it calls directly (webapp/compat/strawberry.py)."""
    names: set[str] = set()
    if hasattr(info, "field_nodes"):  # graphql-core's GraphQLResolveInfo
        for node in info.field_nodes:
            _node_names(node.selection_set, info.fragments, names)
    else:
        for field in info.selected_fields:
            _selection_names(field.selections, names)
    return frozenset(names)


def post_columns(fields: frozenset[str]) -> frozenset[str]:
    """The post columns a list of posts needs for the fields (`asked`) it shows of each post."""
    return frozenset(POST_FIELDS[name] for name in fields if name in POST_FIELDS)


def _node_names(selection_set, fragments, names: set) -> None:
    for node in selection_set.selections if selection_set is not None else ():
        if isinstance(node, FieldNode):
            names.add(node.name.value)
        elif isinstance(node, FragmentSpreadNode):
            fragment = fragments.get(node.name.value)
            if fragment is not None:
                _node_names(fragment.selection_set, fragments, names)
        else:  # an inline fragment
            _node_names(node.selection_set, fragments, names)


def _selection_names(selections, names: set) -> None:
    for selection in selections:  # SelectedField, or a fragment with its own selections
        if isinstance(selection, SelectedField):
            names.add(selection.name)
        else:
            _selection_names(selection.selections, names)
