"""Alembic environment: the app's engine and models; batch mode so SQLite can alter tables."""
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
    with _engine().connect() as connection:
        _run(connection)


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
