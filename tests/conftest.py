"""Fixtures: one app and schema per run (migrated, not create_all), a clean database per test.

SQLite by default; set TEST_DATABASE_URL=postgresql+psycopg://... to run on PostgreSQL.
"""
from __future__ import annotations

import os

import pytest
from redis import Redis
from sqlalchemy import text

from conf.settings import TestingConfig
from tests.doors import DOORS
from webapp import create_app
from webapp.cli import upgrade
from webapp.db import Base
from webapp.extensions import db

PASSWORD = "correct horse battery"


def reset_schema(engine) -> None:
    """Start from an empty database so the migrations, not leftovers, make the schema."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        else:
            tables = "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            for (name,) in connection.execute(text(tables)).all():
                connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    instance = tmp_path_factory.mktemp("instance")
    config = TestingConfig().override(INSTANCE_PATH=instance, MEDIA_ROOT=instance / "media")
    if not os.environ.get("TEST_DATABASE_URL"):
        config.DATABASE_URL = f"sqlite:///{instance / 'test.db'}"
    app = create_app(config)
    with app.app_context():
        reset_schema(db.engine)
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def clean_db(app):
    yield
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
            if db.engine.dialect.name == "postgresql":
                connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    connection.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(params=sorted(DOORS))
def door(request, client):
    """Runs the test once through REST and once through GraphQL."""
    return DOORS[request.param](client)


@pytest.fixture
def make_user(app):
    """Create a user through the service; returns a small record with id, email, password."""
    from webapp.db import utcnow
    from webapp.users.services import create_user

    counter = iter(range(1, 10_000))

    def make(name=None, email=None, password=PASSWORD, role="user", verified=True):
        n = next(counter)
        with app.app_context():
            user = create_user(db.session, name=name or f"User {n}", email=email or f"user{n}@example.com",
                               password=password, role=role)
            if verified:
                user.email_verified = utcnow()
                db.session.commit()
            record = UserRecord(user.id, user.email, password, role, user.name)
            db.session.remove()
        return record

    return make


class UserRecord:
    def __init__(self, id, email, password, role, name):
        self.id, self.email, self.password, self.role, self.name = id, email, password, role, name


@pytest.fixture
def login(client):
    """Tokens for a user record (REST login)."""
    def do(user) -> dict:
        response = client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return do


@pytest.fixture
def token(login):
    """Just the access token for a user record."""
    return lambda user: login(user)["access_token"]


@pytest.fixture
def query_db(app):
    """Run `fn(session)` against the database in a fresh session: what is really stored."""
    def run(fn):
        with app.app_context():
            try:
                return fn(db.session)
            finally:
                db.session.remove()

    return run


@pytest.fixture
def outbox(app):
    """The emails written to the outbox during this test, as parsed messages."""
    import email
    import shutil
    from email import policy

    from webapp.settings_paths import outbox_dir

    folder = outbox_dir(app.config)
    shutil.rmtree(folder, ignore_errors=True)

    def read(to=None):
        messages = [email.message_from_bytes(path.read_bytes(), policy=policy.default)
                    for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)]
        return [m for m in messages if to is None or m["To"] == to]

    yield read
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def broker_down(app):
    """The app's Celery pointed at a closed port, as when Redis is down; `back_up()` restores it."""
    from webapp.celery_app import celery_init_app

    healthy = app.extensions["celery"]
    celery_init_app(app, broker_url="redis://127.0.0.1:1/0", task_always_eager=False)

    def back_up():
        app.extensions["celery"] = healthy
        healthy.set_default()

    yield back_up
    back_up()


@pytest.fixture
def redis_url():
    """TEST_REDIS_URL, emptied: the Redis every app of a services test counts in."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set")
    Redis.from_url(url).flushdb()
    return url
