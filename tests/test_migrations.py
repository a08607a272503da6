"""Migrations are the only way the schema changes: they must match the models exactly."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from webapp.cli import alembic_config
from webapp.extensions import db
from webapp.models import include_object, metadata


def test_autogenerate_finds_no_difference(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "include_object": include_object})
        assert compare_metadata(context, metadata) == []


def test_database_is_at_the_single_head(app):
    with app.app_context(), db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1 and tuple(current) == tuple(heads)


def test_migrations_downgrade_and_upgrade_cleanly(tmp_path):
    """A whole round trip on a scratch SQLite file (PostgreSQL gets the upgrade in every run)."""
    from alembic import command
    from sqlalchemy import create_engine, inspect

    engine = create_engine(f"sqlite:///{tmp_path / 'roundtrip.db'}")
    config = alembic_config()
    config.attributes["engine"] = engine
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert {"users", "profiles", "auth_sessions"} <= set(inspect(engine).get_table_names())
