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
    assert not any("posts.content" in statement for statement in large)  # only the columns asked for
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


NESTED = "{ users(limit: 20) { name profile { firstName } posts(limit: 5) { title author { name } } } }"
POSTS = "{ posts(limit: 20) { title author { name } } }"


def graphql(client, query, tok=None):
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    body = client.post("/graphql", json={"query": query}, headers=headers).get_json()
    assert not body.get("errors"), body
    return body["data"]


def rest(client, path, tok=None):
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    response = client.get(f"/api/v1{path}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_bench_documents_answer_what_rest_answers(app, client, make_user, token):
    """`make bench`'s two GraphQL lists, answered from rows and snapshots, say what REST says:
    the same users, profiles, newest posts (drafts for their author only) and authors."""
    records = seed(app, make_user, users=4, posts_each=7)
    tok = token(records[1])
    expected = [{"name": user["name"], "profile": {"firstName": user["profile"]["first_name"]},
                 "posts": [{"title": post["title"], "author": {"name": post["author"]["name"]}}
                           for post in rest(client, f"/users/{user['id']}/posts?page_size=5", tok)]}
                for user in rest(client, "/users?page_size=20", tok)]
    assert graphql(client, NESTED, tok)["users"] == expected
    mine = expected[1]["posts"]
    assert len(mine) == 5 and len(expected[0]["posts"]) == 4  # own drafts listed, another's not
    anonymous = [{"title": post["title"], "author": {"name": post["author"]["name"]}}
                 for post in rest(client, "/posts?page_size=20")]
    assert graphql(client, POSTS)["posts"] == anonymous and len(anonymous) == 16  # published: 4 each


def test_an_author_seen_twice_shows_each_viewer_what_they_may_see(app, client, make_user, token):
    """Each user becomes a GraphQL User once per request (as a list item and as every post's
    author): the private fields follow the viewer, never the first use."""
    records = seed(app, make_user, users=3, posts_each=2)
    admin = make_user(role="admin")
    query = "{ users(limit: 10) { id email posts(limit: 2) { author { id email } } } }"
    for viewer, sees in ((records[0], {records[0].id}), (admin, {r.id for r in records} | {admin.id})):
        for user in graphql(client, query, token(viewer))["users"]:
            shown = user["id"] in sees
            assert (user["email"] is not None) is shown
            assert all((post["author"]["email"] is not None) is shown for post in user["posts"])


def test_post_lists_with_authors_cost_one_statement_whatever_their_size(app, client, make_user):
    """The authors are read with the posts (a join), only when the selection asks for them."""
    seed(app, make_user, users=10, posts_each=6)  # 40 published posts
    graphql(client, POSTS)  # warm-up
    counts = []
    for limit in (2, 30):
        with counted(app) as statements:
            answer = graphql(client, "{ posts(limit: %d) { title author { name } } }" % limit)
        assert len(answer["posts"]) == limit
        counts.append(len(statements))
    assert counts[0] == counts[1] == 1, counts
    with counted(app) as statements:
        assert len(graphql(client, "{ posts(limit: 30) { title } }")["posts"]) == 30
    assert len(statements) == 1 and "profiles" not in statements[0], statements  # no author asked for
    assert "content" not in statements[0] and "updated_at" not in statements[0]  # nor these columns
    in_fragments = "{ posts(limit: 3) { ...P } } fragment P on Post { ... on Post { author { name } } }"
    with counted(app) as statements:
        answer = graphql(client, in_fragments)["posts"]
    assert len(statements) == 1 and all(post["author"]["name"] for post in answer), statements


def test_one_list_asked_twice_for_other_fields_answers_each(app, client, make_user, token):
    """Posts are read with the columns a selection shows: the same list under two aliases, asking
    for other fields, gets each its own (and a fragment's fields count)."""
    records = seed(app, make_user, users=2, posts_each=3)
    query = """{ users(limit: 2) { a: posts(limit: 2) { title } b: posts(limit: 2) { ...Rest } } }
               fragment Rest on Post { id content createdAt published }"""
    users = graphql(client, query, token(records[0]))["users"]
    mine = users[0]
    assert [post["title"] for post in mine["a"]] == [f"{records[0].name} #2", f"{records[0].name} #1"]
    assert [set(post) for post in mine["b"]] == [{"id", "content", "createdAt", "published"}] * 2
    assert all(post["createdAt"] and post["content"] == "" for post in mine["b"])


def test_each_users_posts_field_follows_its_own_arguments(app, client, make_user, token):
    records = seed(app, make_user, users=3, posts_each=4)  # n % 3 == 0 is a draft: #0 and #3
    tok = token(records[0])
    document = """query($p: Int!) { users(limit: 3) { id posts(limit: $p) { title } other: posts(limit: 1) { id } } }"""
    for limit in (1, 3, 50):
        response = client.post("/graphql", json={"query": document, "variables": {"p": limit}},
                               headers={"Authorization": f"Bearer {tok}"})
        body = response.get_json()
        assert not body.get("errors"), body
        mine, other = body["data"]["users"][0], body["data"]["users"][1]
        newest_first = [f"{records[0].name} #{n}" for n in (3, 2, 1, 0)]  # the viewer's own drafts too
        assert [p["title"] for p in mine["posts"]] == newest_first[:limit]
        assert [p["title"] for p in other["posts"]] == [f"{records[1].name} #{n}" for n in (2, 1)][:limit]
        assert len(mine["other"]) == len(other["other"]) == 1
