"""The closed sets of the GraphQL door as enums: `Role`, `JobStatus`, `ExportFormat`.

Each value's GraphQL name is the very string REST and the services use, lower case (`user`,
`admin`; `queued` … `cancelled`; `csv`, `json`), not GraphQL's customary UPPER_CASE: answers
read the same as before the enums (and as REST's), and a variable keeps the JSON value clients
already send (`{"format": "csv"}`); only a document's literal loses its quotes (`format: csv`).
The members are built from the services' own tuples, so a new role, status or format reaches
the schema (and schema.graphql's diff) without a second list to keep in step. The door maps
between these and the services' strings: `Enum(string)` going out, `.value` coming in
(`PartialInput.changes` does it for update inputs).
"""
from __future__ import annotations

from enum import Enum

import strawberry

from webapp.jobs.models import STATUSES
from webapp.jobs.services import FORMATS
from webapp.users.models import ROLES


def _closed_set(name: str, values: tuple[str, ...], description: str):
    return strawberry.enum(Enum(name, [(value, value) for value in values]), description=description)


Role = _closed_set("Role", ROLES, "A user's role: an `admin` may act on every user, post and job; "
                                   "a `user`, on their own.")
JobStatus = _closed_set("JobStatus", STATUSES, "Where a job is: `queued`, `running`, then one of "
                                               "`succeeded`, `failed` or `cancelled` for good.")
ExportFormat = _closed_set("ExportFormat", FORMATS, "A user export's file format.")
