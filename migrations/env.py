"""Alembic environment: the app's engine and models; batch mode so SQLite can alter tables."""
from contextlib import contextmanager

from alembic import context
from sqlalchemy import event

from webapp.models import include_object, metadata

config = context.config


def _engine():
    engine = config.attributes.get("engine")
    if engine is None:
        from conf import load_config
        from webapp.db import make_engine

        engine = make_engine(load_config().as_flask())
    return engine


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with _engine().connect() as connection, _sqlite_foreign_keys_off(connection):
        _run(connection)


@contextmanager
def _sqlite_foreign_keys_off(connection):
    """On SQLite, migrations run with foreign keys off and each in a real transaction.

    Batch mode rebuilds a table by copy, drop and rename; with foreign keys on, dropping a
    parent table deletes every row that references it (ON DELETE CASCADE), so they are off, as
    SQLite's ALTER TABLE page prescribes. That pragma only takes effect outside a transaction,
    hence the commits; the old setting comes back after. The driver opens no transaction before
    DDL, so a failed rebuild would leave a half-made table behind: an explicit BEGIN makes each
    migration all or nothing.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    was_on = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    event.listen(connection, "begin", _begin)
    try:
        yield
    finally:
        event.remove(connection, "begin", _begin)
        connection.rollback()
        connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if was_on else 'OFF'}")
        connection.commit()


def _begin(connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=False,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        connection.commit()


run_migrations_online()
