"""ids are never reused on SQLite: AUTOINCREMENT on every table with an integer id

Without AUTOINCREMENT SQLite gives a new row the highest id in use plus one, so deleting the
newest user (post, job, token...) hands its id to the next one, and whatever was keyed by the
old id (cache namespaces, idempotency records, the email ledger) is mistaken for the new row.
SQLite cannot add AUTOINCREMENT in place: each table is rebuilt with alembic's batch mode
(copy, drop, rename) keeping its columns, constraints, indexes and rows with their ids. Copying
the rows sets the table's sqlite_sequence entry to its highest id, so the next id is fresh.
Foreign keys must be off meanwhile (migrations/env.py does it), or dropping `users` would
cascade-delete every profile, post, job and token; the check at the end proves the rebuild left
no reference dangling.

auth_sessions (random string ids) and profiles (keyed by their user's id) have no integer id of
their own, so AUTOINCREMENT does not apply to them. PostgreSQL: nothing to do, sequences never
go back.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 08:00:00.000000
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

TABLES = ("users", "account_tokens", "jobs", "posts", "idempotency_keys", "sent_emails")


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(*, autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("SQLite foreign keys are on: rebuilding `users` would delete every row "
                           "that references it. Run migrations through migrations/env.py.")
    dangling_before = set(bind.exec_driver_sql("PRAGMA foreign_key_check").all())
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always",
                                  naming_convention={"pk": "pk_%(table_name)s"},
                                  table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
    dangling = set(bind.exec_driver_sql("PRAGMA foreign_key_check").all()) - dangling_before
    if dangling:
        raise RuntimeError(f"the rebuild left rows referencing missing rows: {sorted(dangling)[:5]}")
