"""Reads outside a transaction, writes inside one (webapp/db.py `AppSession.get_bind`), on PostgreSQL.

A unit of work that only reads (a GraphQL query, a GET) sends its SELECTs without BEGIN … ROLLBACK;
anything that writes keeps its transaction, and a session that has written reads in it from then
on (its own uncommitted writes, the rows it locked). SQLite has no round trips to save: unchanged.
"""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from webapp.extensions import db
from webapp.posts.models import Post

NESTED = "{ users(limit: 20) { name profile { firstName } posts(limit: 5) { title author { name } } } }"


@pytest.fixture(autouse=True)
def postgresql_only(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("reads outside a transaction are PostgreSQL's (TEST_DATABASE_URL)")


@contextmanager
def in_transaction(app):
    """For each statement sent: (whether it ran inside a transaction, its first words)."""
    seen = []

    def note(conn, cursor, statement, *args):
        seen.append((not cursor.connection.autocommit, " ".join(statement.split()[:2])))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def ask(client, query, tok=None):
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    body = client.post("/graphql", json={"query": query}, headers=headers).get_json()
    assert not body.get("errors"), body
    return body["data"]


def test_a_query_reads_outside_a_transaction_and_a_mutation_writes_in_one(app, client, make_user, token):
    author = make_user()
    tok = token(author)
    ask(client, 'mutation { createPost(input: {title: "first", published: true}) { id } }', tok)
    with in_transaction(app) as reads:
        assert ask(client, NESTED, tok)["users"][0]["posts"] == [{"title": "first", "author": {"name": author.name}}]
        assert ask(client, "{ posts(limit: 5) { title author { name } } }")["posts"][0]["title"] == "first"
    assert reads and not any(inside for inside, _ in reads), reads
    with in_transaction(app) as writes:
        ask(client, 'mutation { createPost(input: {title: "second"}) { id title } }', tok)
    assert any(words.startswith("INSERT") for _, words in writes)
    assert all(inside for inside, _ in writes), writes


def test_a_read_only_request_that_writes_reads_its_own_write_in_its_transaction(app, make_user):
    author = make_user()
    count = select(func.count()).select_from(Post)
    with app.test_request_context("/api/v1/posts", method="GET"), in_transaction(app) as seen:
        assert db.session.scalar(count) == 0  # outside a transaction
        db.session.add(Post(author_id=author.id, title="unsaved"))
        assert db.session.scalar(count) == 1  # the flush, and the read after it, in the transaction
        assert db.session.scalar(select(Post.id).where(Post.author_id == author.id).with_for_update()) is not None
        db.session.rollback()
        assert db.session.scalar(count) == 0
        db.session.remove()
    assert [inside for inside, _ in seen] == [False, True, True, True, True], seen


def test_a_lock_taken_in_a_read_only_request_is_held_in_its_transaction(app, make_user):
    make_user()
    with app.test_request_context("/api/v1/users", method="GET"), in_transaction(app) as seen:
        from webapp.users.models import User

        db.session.scalar(select(User.id).with_for_update())
        db.session.scalar(select(func.count()).select_from(User))
        db.session.remove()
    assert [inside for inside, _ in seen] == [True, True], seen
