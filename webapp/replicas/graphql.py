"""The GraphQL door's half of the routing: a query document only reads, a mutation may write.

A query's statements run outside a transaction (webapp/db.py) or, with replicas, on a replica;
a mutation's in the primary's transaction, as every write.

Strawberry knows the operation type once the document is parsed and validated, before any
resolver runs (on_execute), which is before the request's session has run a statement.
"""
from __future__ import annotations

from flask import has_app_context, has_request_context
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from webapp.db import request_reads_only
from webapp.extensions import db
from webapp.replicas.routing import reads_only


class ReadsFromReplicas(SchemaExtension):
    def on_execute(self):
        if self.execution_context.operation_type is OperationType.QUERY:
            if has_request_context():  # the request, not its session: a `me` makes none
                request_reads_only()
            elif has_app_context():  # a query over the realtime socket
                reads_only(db.session)
        yield
