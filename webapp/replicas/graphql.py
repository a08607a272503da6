"""The GraphQL door's half of the routing: a query document reads from a replica, a mutation never.

Strawberry knows the operation type once the document is parsed and validated, before any
resolver runs (on_execute), which is before the request's session has run a statement.
"""
from __future__ import annotations

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from webapp.extensions import db
from webapp.replicas.routing import reads_only


class ReadsFromReplicas(SchemaExtension):
    def on_execute(self):
        if self.execution_context.operation_type is OperationType.QUERY:
            reads_only(db.session)
        yield
