"""Alembic environment: the app's engine and models; batch mode so SQLite can alter tables."""
from contextlib import contextmanager

from alembic import context

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
    """Foreign keys off while migrations run on SQLite, as its ALTER TABLE page prescribes.

    Batch mode rebuilds a table by copy, drop and rename; with foreign keys on, dropping a
    parent table deletes every row that references it (ON DELETE CASCADE). The pragma only
    takes effect outside a transaction, hence the commits; the old setting comes back after.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    was_on = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()
        connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if was_on else 'OFF'}")
        connection.commit()


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
