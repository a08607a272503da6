"""Command line: `flask --app wsgi create-admin | db upgrade | db check ...`."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from webapp import errors
from webapp.extensions import db

db_cli = AppGroup("db", help="Database migrations (alembic).")


def init_app(app) -> None:
    app.cli.add_command(create_admin)
    app.cli.add_command(db_cli)
    from webapp.jobs.cli import users_cli

    app.cli.add_command(users_cli)


def alembic_config():
    """The alembic config pointing at migrations/ and at this app's database."""
    from pathlib import Path

    from alembic.config import Config

    root = Path(__file__).resolve().parent.parent / "migrations"
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root))
    from flask import has_app_context

    if has_app_context():
        config.attributes["engine"] = db.engine
    return config


def upgrade(revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(), revision)


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision):
    """Apply migrations up to REVISION (default: head)."""
    upgrade(revision)
    click.echo(f"database at {revision} ({current_app.config['DATABASE_URL'].split('@')[-1]})")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision):
    """Revert migrations down to REVISION."""
    from alembic import command

    command.downgrade(alembic_config(), revision)


@db_cli.command("current")
def db_current():
    """Show the revision the database is at."""
    from alembic import command

    command.current(alembic_config())


@click.command("create-admin")
@with_appcontext
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Prompted for (hidden) when left out.")
def create_admin(email, name, password):
    """Create an administrator account."""
    from webapp.users.services import create_user

    try:
        user = create_user(db.session, name=name, email=email, password=password, role="admin")
    except errors.DomainError as exc:
        details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.errors.items())
        raise click.ClickException(f"{exc.message} {details}".strip()) from None
    click.echo(f"admin {user.email} created with id {user.id}")
