"""Conditional requests (REST): ETag on reads, If-None-Match → 304, a stale If-Match → 412."""
from __future__ import annotations

import pytest

from webapp.posts.models import Post
from webapp.users.models import User


def auth(tok):
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
def post(client, make_user, token):
    author = make_user()
    tok = token(author)
    body = client.post("/api/v1/posts", json={"title": "T", "content": "C", "published": True}, headers=auth(tok)).get_json()
    return body, tok


@pytest.mark.parametrize("path", ["/api/v1/posts/{id}", "/api/v1/posts", "/api/v1/users/{author}/posts"])
def test_reads_carry_an_etag_and_answer_304(client, post, path):
    body, _ = post
    url = path.format(id=body["id"], author=body["author_id"])
    first = client.get(url)
    assert first.status_code == 200 and first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    assert client.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200


def test_a_write_with_a_stale_if_match_is_412_and_changes_nothing(client, post, query_db):
    body, tok = post
    url = f"/api/v1/posts/{body['id']}"
    etag = client.get(url).headers["ETag"]
    response = client.patch(url, json={"title": "First"}, headers={**auth(tok), "If-Match": etag})
    assert response.status_code == 200 and response.headers["ETag"] != etag
    for method, kwargs in [("patch", {"json": {"title": "Lost update"}}),
                           ("put", {"json": {"title": "Lost", "content": "update"}}), ("delete", {})]:
        response = getattr(client, method)(url, headers={**auth(tok), "If-Match": etag}, **kwargs)
        assert response.status_code == 412, method
        assert response.get_json()["code"] == 412
    assert query_db(lambda s: s.get(Post, body["id"]).title) == "First"
    fresh = client.get(url).headers["ETag"]
    assert client.delete(url, headers={**auth(tok), "If-Match": fresh}).status_code == 204


def test_if_match_is_optional(client, post):
    body, tok = post
    assert client.patch(f"/api/v1/posts/{body['id']}", json={"title": "X"}, headers=auth(tok)).status_code == 200


def test_user_etags_follow_what_the_viewer_sees(client, make_user, token, query_db):
    alice, bob = make_user(), make_user()
    url = f"/api/v1/users/{alice.id}"
    own = client.get(url, headers=auth(token(alice))).headers["ETag"]
    public = client.get(url, headers=auth(token(bob))).headers["ETag"]
    assert own != public
    me = client.get("/api/v1/users/me", headers=auth(token(alice)))
    assert client.get("/api/v1/users/me", headers={**auth(token(alice)), "If-None-Match": me.headers["ETag"]}).status_code == 304
    assert client.get(url, headers={**auth(token(alice)), "If-None-Match": own}).status_code == 304
    # alice edits herself with a fresh tag, then a stale one is refused
    assert client.patch(url, json={"name": "Alice"}, headers={**auth(token(alice)), "If-Match": own}).status_code == 200
    assert client.patch(url, json={"name": "Eve"}, headers={**auth(token(alice)), "If-Match": own}).status_code == 412
    assert client.put(url, json={"name": "Eve", "email": "eve@example.com"},
                      headers={**auth(token(alice)), "If-Match": own}).status_code == 412
    assert client.delete(url, headers={**auth(token(alice)), "If-Match": own}).status_code == 412
    assert query_db(lambda s: s.get(User, alice.id).name) == "Alice"


def test_profile_reads_and_writes_are_conditional(client, make_user, token):
    alice = make_user()
    url = f"/api/v1/users/{alice.id}/profile"
    etag = client.get(url, headers=auth(token(alice))).headers["ETag"]
    assert client.get(url, headers={**auth(token(alice)), "If-None-Match": etag}).status_code == 304
    assert client.patch(url, json={"bio": "one"}, headers={**auth(token(alice)), "If-Match": etag}).status_code == 200
    assert client.patch(url, json={"bio": "two"}, headers={**auth(token(alice)), "If-Match": etag}).status_code == 412


def test_openapi_documents_the_conditional_headers(client):
    spec = client.get("/openapi.json").get_json()
    patch = spec["paths"]["/api/v1/posts/{post_id}"]["patch"]
    assert "412" in patch["responses"] and "428" not in patch["responses"]
    if_match = [p for p in patch["parameters"] if p.get("name") == "If-Match"]
    assert if_match and if_match[0]["required"] is False
    assert "304" in spec["paths"]["/api/v1/users/{user_id}"]["get"]["responses"]
    assert {"$ref": "#/components/parameters/IdempotencyKey"} in spec["paths"]["/api/v1/posts"]["post"]["parameters"]
