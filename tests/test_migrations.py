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


# Autogenerate does not compare sqlite_autoincrement, so the DDL itself is checked.
OWN_INTEGER_IDS = {table.name for table in metadata.tables.values()
                   if len(table.primary_key.columns) == 1
                   and all(c.type.python_type is int and not c.foreign_keys for c in table.primary_key.columns)}


def autoincrementing_tables(engine) -> set[str]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all()
    return {name for name, sql in rows if "AUTOINCREMENT" in sql}


def test_every_model_asks_sqlite_never_to_reuse_ids():
    assert {"users", "posts", "jobs", "account_tokens", "sent_emails", "idempotency_keys"} <= OWN_INTEGER_IDS
    assert [t.name for t in metadata.tables.values() if not t.dialect_options["sqlite"]["autoincrement"]] == []


def test_sqlite_tables_autoincrement_whether_migrated_or_created_from_the_models(tmp_path):
    """On SQLite every table with an integer id of its own says AUTOINCREMENT (issue 9)."""
    from alembic import command
    from sqlalchemy import create_engine

    migrated = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    config = alembic_config()
    config.attributes["engine"] = migrated
    command.upgrade(config, "head")
    created = create_engine(f"sqlite:///{tmp_path / 'created.db'}")
    metadata.create_all(created)
    assert autoincrementing_tables(migrated) == OWN_INTEGER_IDS
    assert autoincrementing_tables(created) == OWN_INTEGER_IDS


def test_migration_0004_keeps_every_row_and_its_id_and_never_reuses_one(tmp_path):
    """The rebuild runs with the app's engine (foreign keys on): no cascade, no lost row, fresh ids."""
    from alembic import command
    from sqlalchemy import inspect

    from webapp.db import make_engine

    engine = make_engine({"DATABASE_URL": f"sqlite:///{tmp_path / 'data.db'}"})
    config = alembic_config()
    config.attributes["engine"] = engine
    command.upgrade(config, "0003")
    now = "'2026-01-01 00:00:00.000000'"
    with engine.begin() as connection:
        run = connection.exec_driver_sql
        for n in (1, 2, 3):
            run(f"INSERT INTO users (id, email, name, created_at, updated_at) "
                f"VALUES ({n}, 'u{n}@x.org', 'U', {now}, {now})")
            run(f"INSERT INTO profiles (user_id, updated_at) VALUES ({n}, {now})")
            run(f"INSERT INTO posts (id, author_id, title, created_at, updated_at) "
                f"VALUES ({n}, {n}, 'T', {now}, {now})")
            run(f"INSERT INTO jobs (id, kind, owner_id, status, progress, params, attempts, created_at) "
                f"VALUES ({n}, 'user-export', {n}, 'queued', 0, '{{}}', 0, {now})")
            run(f"INSERT INTO account_tokens (id, user_id, purpose, email, nonce, token_hash, created_at, "
                f"expires_at) VALUES ({n}, {n}, 'verify_email', 'u{n}@x.org', 'n', 'h{n}', {now}, {now})")
            run(f"INSERT INTO auth_sessions (id, user_id, current_jti, created_at, last_used_at, expires_at) "
                f"VALUES ('s{n}', {n}, 'j', {now}, {now}, {now})")
            run(f"INSERT INTO sent_emails (id, key, recipient, subject, status, attempts, created_at) "
                f"VALUES ({n}, 'k{n}', 'u{n}@x.org', 'S', 'sent', 1, {now})")
            run(f"INSERT INTO idempotency_keys (id, caller, key, fingerprint, created_at, expires_at) "
                f"VALUES ({n}, 'user:{n}', 'k', 'f', {now}, {now})")
    tables = ("users", "profiles", "posts", "jobs", "account_tokens", "auth_sessions", "sent_emails",
              "idempotency_keys")

    columns = {t: ", ".join(c["name"] for c in inspect(engine).get_columns(t)) for t in tables}

    def rows():  # the columns 0003 made: later migrations may add some
        with engine.connect() as connection:
            return {t: connection.exec_driver_sql(f"SELECT {columns[t]} FROM {t} ORDER BY 1").all() for t in tables}

    before = rows()
    command.upgrade(config, "head")
    assert rows() == before
    assert autoincrementing_tables(engine) == OWN_INTEGER_IDS
    with engine.begin() as connection:
        run = connection.exec_driver_sql
        assert run("PRAGMA foreign_keys").scalar() == 1  # back on for the app
        run("DELETE FROM users WHERE id = 3")  # the newest: cascades as before
        assert run("SELECT count(*) FROM posts").scalar() == 2
        run(f"INSERT INTO users (email, name, created_at, updated_at) VALUES ('new@x.org', 'N', {now}, {now})")
        assert run("SELECT id FROM users WHERE email = 'new@x.org'").scalar() == 4

    command.downgrade(config, "0003")
    assert autoincrementing_tables(engine) == set()
    after_downgrade = rows()
    assert [row[0] for row in after_downgrade["users"]] == [1, 2, 4]
    assert len(after_downgrade["profiles"]) == len(after_downgrade["posts"]) == 2


def test_a_migration_that_fails_on_sqlite_leaves_nothing_half_done(tmp_path):
    """Each migration is one transaction, DDL included: a failed rebuild can simply be run again."""
    import pytest
    from alembic import command
    from sqlalchemy.exc import OperationalError

    from webapp.db import make_engine

    engine = make_engine({"DATABASE_URL": f"sqlite:///{tmp_path / 'fail.db'}"})
    config = alembic_config()
    config.attributes["engine"] = engine
    command.upgrade(config, "0003")
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO users (id, email, name, created_at, updated_at) "
                                   "VALUES (1, 'a@x.org', 'A', '2026-01-01', '2026-01-01')")
        connection.exec_driver_sql("CREATE TABLE _alembic_tmp_jobs (id INTEGER)")  # the jobs rebuild fails

    with pytest.raises(OperationalError):
        command.upgrade(config, "head")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0003"
        assert connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE name LIKE '_alembic_tmp_%'"
                                          ).scalars().all() == ["_alembic_tmp_jobs"]
        assert connection.exec_driver_sql("SELECT id FROM users").scalars().all() == [1]
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert autoincrementing_tables(engine) == set()  # users and account_tokens were rolled back too

    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE _alembic_tmp_jobs")
    command.upgrade(config, "head")
    assert autoincrementing_tables(engine) == OWN_INTEGER_IDS
