"""Command line: `flask --app wsgi create-admin | seed | db upgrade | users ... | mail token`.

Each command logs warnings only unless given `-v/--verbose` (webapp/observability.py's quiet_logs).
"""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from webapp import errors
from webapp.extensions import db
from webapp.observability import quiet_logs

db_cli = AppGroup("db", help="Database migrations (alembic).")
mail_cli = AppGroup("mail", help="Email written to the outbox folder (the embedded default).")


def init_app(app) -> None:
    app.cli.add_command(create_admin)
    app.cli.add_command(seed)
    app.cli.add_command(db_cli)
    app.cli.add_command(mail_cli)
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
@quiet_logs
def db_upgrade(revision):
    """Apply migrations up to REVISION (default: head)."""
    upgrade(revision)
    click.echo(f"database at {revision} ({current_app.config['DATABASE_URL'].split('@')[-1]})")


@db_cli.command("downgrade")
@click.argument("revision")
@quiet_logs
def db_downgrade(revision):
    """Revert migrations down to REVISION."""
    from alembic import command

    command.downgrade(alembic_config(), revision)


@db_cli.command("current")
@quiet_logs
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
@quiet_logs
def create_admin(email, name, password):
    """Create an administrator account, its email address verified (no email is sent)."""
    from webapp.users.services import create_user

    try:
        user = create_user(db.session, name=name, email=email, password=password, role="admin", verified=True)
    except errors.DomainError as exc:
        details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.errors.items())
        raise click.ClickException(f"{exc.message} {details}".strip()) from None
    click.echo(f"admin {user.email} created with id {user.id}")


@click.command("seed")
@click.option("--users", default=20, show_default=True, help="Demo users to create.")
@click.option("--posts", "posts_per_user", default=5, show_default=True, help="Posts per demo user.")
@click.option("--password", default="demo password 1", show_default=True, help="Password of every demo user.")
@with_appcontext
@quiet_logs
def seed(users, posts_per_user, password):
    """Demo data through the services: verified users with profiles and posts (some drafts)."""
    from sqlalchemy import select

    from webapp.posts.services import create_post
    from webapp.profiles.services import update_profile
    from webapp.users.models import User
    from webapp.users.services import create_user

    created = 0
    with click.progressbar(range(users), label="seeding") as bar:
        for n in bar:
            email = f"demo{n}@example.com"
            if db.session.scalar(select(User.id).where(User.email == email)) is not None:
                continue
            user = create_user(db.session, name=f"Demo User {n}", email=email, password=password, verified=True)
            update_profile(db.session, user, user, {"first_name": "Demo", "last_name": f"User {n}",
                                                    "bio": "Seeded for trying the API."})
            for k in range(posts_per_user):
                create_post(db.session, user, title=f"Demo post {k} by user {n}",
                            content="Lorem ipsum dolor sit amet. " * 5, published=k % 4 != 3)
            created += 1
    click.echo(f"{created} demo users (password {password!r}) with {posts_per_user} posts each")


@mail_cli.command("token")
@click.argument("email")
@quiet_logs
def mail_token(email):
    """Print the token of the newest verify/reset/set-password email to EMAIL in the outbox folder."""
    import email as email_lib
    import re
    from email import policy
    from email.utils import parseaddr

    from webapp.settings_paths import outbox_dir

    if current_app.config.get("SMTP_URL"):
        raise click.ClickException("SMTP_URL is set: email goes to that server, not to the outbox folder.")
    wanted = email.strip().lower()
    newest_first = sorted(outbox_dir(current_app.config).glob("*.eml"), key=lambda p: p.stat().st_mtime_ns,
                          reverse=True)
    for path in newest_first:
        message = email_lib.message_from_bytes(path.read_bytes(), policy=policy.default)
        if parseaddr(str(message["To"] or ""))[1].lower() != wanted:
            continue
        found = re.search(r"[?&]token=([0-9]+\.[A-Za-z0-9_-]+)", message.get_body(("plain",)).get_content())
        if found:
            click.echo(found.group(1))
            return
    raise click.ClickException(f"No email with a token to {email} in {outbox_dir(current_app.config)}.")
