"""Posts: who writes, who reads drafts, who edits and deletes — through both doors."""
from __future__ import annotations

import pytest

from webapp.posts.models import Post


@pytest.fixture
def people(make_user, token):
    """An author, another user, an admin, an unverified user: their records and tokens."""
    class People:
        pass

    p = People()
    p.author, p.other, p.admin = make_user(), make_user(), make_user(role="admin")
    p.unverified = make_user(verified=False)
    p.author_token, p.other_token, p.admin_token = token(p.author), token(p.other), token(p.admin)
    p.unverified_token = token(p.unverified)
    return p


def write(door, tok, title="Hello", content="World", published=True):
    outcome = door.create_post(tok, title=title, content=content, published=published)
    assert outcome.ok, outcome
    return outcome.data


def test_a_verified_user_writes_a_post(door, people, query_db):
    post = write(door, people.author_token, title="  First  ", published=False)
    assert post["title"] == "First" and post["published"] is False
    assert post["author"] == {"id": people.author.id, "name": people.author.name}
    assert query_db(lambda s: s.get(Post, post["id"]).author_id) == people.author.id
    if door.name == "rest":
        response = door.create_post(people.author_token, title="T").raw
        assert response.status_code == 201
        assert response.headers["Location"].endswith(f"/api/v1/posts/{response.get_json()['id']}")


def test_writing_needs_a_verified_email_and_a_token(door, people, query_db):
    assert door.create_post(people.unverified_token, title="No").status == "forbidden"
    assert door.create_post(None, title="No").status == "unauthenticated"
    assert query_db(lambda s: s.query(Post).count()) == 0


@pytest.mark.parametrize("fields", [{"title": ""}, {"title": "   "}, {"title": "x" * 201},
                                    {"title": "A\x00B"}, {"title": "ok", "content": "A\x00B"}])
def test_post_input_is_validated(door, people, fields, query_db):
    assert door.create_post(people.author_token, **fields).status == "bad_input"
    assert query_db(lambda s: s.query(Post).count()) == 0


def test_drafts_are_visible_to_their_author_and_admins_only(door, people):
    draft = write(door, people.author_token, published=False)
    assert door.get_post(people.author_token, draft["id"]).ok
    assert door.get_post(people.admin_token, draft["id"]).ok
    assert door.get_post(people.other_token, draft["id"]).status == "not_found"
    assert door.get_post(None, draft["id"]).status == "not_found"


def test_published_posts_are_public(door, people):
    post = write(door, people.author_token)
    outcome = door.get_post(None, post["id"])
    assert outcome.ok and outcome.data["title"] == "Hello"
    assert door.get_post(None, 999_999).status == "not_found"


def test_lists_show_published_posts_and_your_own_drafts(door, people):
    mine = write(door, people.author_token, title="Mine draft", published=False)
    theirs = write(door, people.other_token, title="Their draft", published=False)
    public = write(door, people.other_token, title="Public")
    ids = lambda outcome: {post["id"] for post in outcome.data}  # noqa: E731
    assert ids(door.list_posts(None)) == {public["id"]}
    assert ids(door.list_posts(people.author_token)) == {public["id"], mine["id"]}
    assert ids(door.list_posts(people.admin_token)) == {public["id"], mine["id"], theirs["id"]}
    assert ids(door.list_posts(people.author_token, author_id=people.other.id)) == {public["id"]}


def test_a_users_posts_include_drafts_for_that_user_and_admins(door, people):
    draft = write(door, people.author_token, published=False)
    public = write(door, people.author_token)
    ids = lambda outcome: [post["id"] for post in outcome.data]  # noqa: E731
    assert ids(door.user_posts(people.author_token, people.author.id)) == [public["id"], draft["id"]]
    assert ids(door.user_posts(people.admin_token, people.author.id)) == [public["id"], draft["id"]]
    assert ids(door.user_posts(people.other_token, people.author.id)) == [public["id"]]


def test_only_the_author_or_an_admin_edits(door, people, query_db):
    post = write(door, people.author_token)
    assert door.update_post(people.other_token, post["id"], title="Hacked").status == "forbidden"
    assert query_db(lambda s: s.get(Post, post["id"]).title) == "Hello"
    outcome = door.update_post(people.author_token, post["id"], title="Edited", published=False)
    assert outcome.ok and outcome.data["title"] == "Edited" and outcome.data["published"] is False
    # a draft is not even found by someone who may not read it
    assert door.update_post(people.other_token, post["id"], title="Hacked").status == "not_found"
    assert door.update_post(people.admin_token, post["id"], title="By admin").ok
    assert door.update_post(people.author_token, post["id"], title="").status == "bad_input"
    assert query_db(lambda s: s.get(Post, post["id"]).title) == "By admin"


def test_only_the_author_or_an_admin_deletes(door, people, query_db):
    first, second = write(door, people.author_token), write(door, people.author_token)
    assert door.delete_post(people.other_token, first["id"]).status == "forbidden"
    assert door.delete_post(None, first["id"]).status == "unauthenticated"
    assert door.delete_post(people.author_token, first["id"]).ok
    assert door.delete_post(people.admin_token, second["id"]).ok
    assert query_db(lambda s: s.query(Post).count()) == 0
    assert door.get_post(people.author_token, first["id"]).status == "not_found"


def test_deleting_a_user_deletes_their_posts(door, people, query_db):
    write(door, people.author_token)
    write(door, people.other_token)
    assert door.delete_user(people.author_token, people.author.id).ok
    assert query_db(lambda s: [p.author_id for p in s.query(Post)]) == [people.other.id]


def test_rest_put_replaces_the_post(client, people):
    headers = {"Authorization": f"Bearer {people.author_token}"}
    post = client.post("/api/v1/posts", json={"title": "T", "content": "C", "published": True}, headers=headers).get_json()
    response = client.put(f"/api/v1/posts/{post['id']}", json={"title": "New", "content": "Body"}, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["published"] is False and response.get_json()["content"] == "Body"
    response = client.put(f"/api/v1/posts/{post['id']}", json={"title": "New"}, headers=headers)
    assert response.status_code == 422 and "content" in response.get_json()["errors"]


def test_rest_lists_page_search_and_sort(client, people):
    headers = {"Authorization": f"Bearer {people.author_token}"}
    for title in ["Banana bread", "apple pie", "Cherry tart", "Apple crumble", "100%_done"]:
        assert client.post("/api/v1/posts", json={"title": title, "published": True}, headers=headers).status_code == 201
    response = client.get("/api/v1/posts", query_string={"q": "APPLE", "sort": "title"})
    assert [p["title"] for p in response.get_json()] == ["Apple crumble", "apple pie"] or \
        [p["title"].lower() for p in response.get_json()] == ["apple crumble", "apple pie"]
    response = client.get("/api/v1/posts", query_string={"q": "%_"})
    assert [p["title"] for p in response.get_json()] == ["100%_done"]
    response = client.get("/api/v1/posts", query_string={"page": 2, "page_size": 2, "sort": "id"})
    assert response.status_code == 200 and len(response.get_json()) == 2
    assert '"total": 5' in response.headers["X-Pagination"] and '"page": 2' in response.headers["X-Pagination"]
    newest = client.get("/api/v1/posts").get_json()
    assert newest[0]["title"] == "100%_done"  # default sort: newest first
    assert client.get("/api/v1/posts", query_string={"page_size": 101}).status_code == 422
    assert client.get("/api/v1/posts", query_string={"sort": "password"}).status_code == 422
    assert client.get("/api/v1/users/999999/posts").status_code == 404


def test_graphql_limits_are_capped(client, people):
    from tests.doors import GraphQLDoor

    door = GraphQLDoor(client)
    for n in range(3):
        write(door, people.author_token, title=f"P{n}")
    assert len(door.list_posts(None, limit=1000).data) == 3
    assert len(door.list_posts(None, skip=2, limit=5).data) == 1
