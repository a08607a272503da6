"""GraphQL without N+1: a nested query costs the same few statements whatever the list sizes."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from webapp.db import utcnow
from webapp.extensions import db
from webapp.posts.models import Post

QUERY = """query($l: Int!) { users(limit: $l) { id profile { firstName }
  posts(limit: 5) { title published author { name } } } }"""


@contextmanager
def counted(app):
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def seed(app, make_user, users=12, posts_each=7):
    records = [make_user() for _ in range(users)]
    with app.app_context():
        for record in records:
            for n in range(posts_each):
                db.session.add(Post(author_id=record.id, title=f"{record.name} #{n}", published=n % 3 != 0,
                                    created_at=utcnow()))
        db.session.commit()
        db.session.remove()
    return records


def run(client, tok, limit):
    response = client.post("/graphql", json={"query": QUERY, "variables": {"l": limit}},
                           headers={"Authorization": f"Bearer {tok}"})
    body = response.get_json()
    assert not body.get("errors"), body
    return body["data"]["users"]


def test_nested_lists_cost_a_constant_number_of_statements(app, client, make_user, token):
    records = seed(app, make_user)
    tok = token(records[0])
    run(client, tok, 1)  # warm-up: first-use caches are not the point
    with counted(app) as small:
        two = run(client, tok, 2)
    with counted(app) as large:
        hundred = run(client, tok, 100)
    assert len(two) == 2 and len(hundred) == 12
    assert len(large) == len(small) <= 6, large
    # the rules hold in the batch: the viewer sees their own drafts, others' published posts only
    mine, other = hundred[0], hundred[1]
    assert len(mine["posts"]) == 5 and any(not p["published"] for p in mine["posts"])
    assert all(p["published"] for p in other["posts"]) and len(other["posts"]) == 4
    assert {p["author"]["name"] for p in other["posts"]} == {records[1].name}


def test_post_lists_load_authors_in_one_statement(app, client, make_user, token):
    records = seed(app, make_user, users=6, posts_each=3)
    tok = token(records[0])
    query = "{ posts(limit: 100) { title author { id name posts(limit: 2) { title } } } }"
    counts = []
    for _ in range(2):
        with counted(app) as statements:
            body = client.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {tok}"}).get_json()
        assert not body.get("errors"), body
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 6, counts
