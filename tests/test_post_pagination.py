"""Posts pagination that scales: keyset cursors, bounded totals, and totals read fresh after writes."""
from __future__ import annotations

import json

import pytest

from webapp.pagination import encode_cursor
from webapp.posts import counting


@pytest.fixture
def author(make_user, token):
    user = make_user()
    return user, {"Authorization": f"Bearer {token(user)}"}


def _write(client, headers, n, published=True, prefix="Post"):
    ids = []
    for i in range(n):
        response = client.post("/api/v1/posts", json={"title": f"{prefix} {i:02d}", "published": published},
                               headers=headers)
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    return ids


def _total(response) -> int:
    return json.loads(response.headers["X-Pagination"])["total"]


def _walk(client, path, query, headers=None):
    """Every item, following X-Next-Cursor; checks the Link header agrees with it."""
    seen, response = [], client.get(path, query_string=query, headers=headers)
    while True:
        assert response.status_code == 200, response.get_json()
        seen += [post["id"] for post in response.get_json()]
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            assert "Link" not in response.headers
            return seen
        assert response.headers["Link"].endswith('; rel="next"') and f"cursor={cursor}" in response.headers["Link"]
        response = client.get(path, query_string={**{k: v for k, v in query.items() if k != "page"},
                                                  "cursor": cursor}, headers=headers)
        assert json.loads(response.headers["X-Pagination"]).keys() == {"total"}


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "title", "-title", "id", "-id", "-updated_at"])
def test_walking_by_cursor_gives_what_offset_pages_give(client, author, sort):
    _, headers = author
    _write(client, headers, 7)
    _write(client, headers, 2, published=False, prefix="Draft")
    _write(client, headers, 2, prefix="Post 03")  # duplicate-ish titles: the id breaks ties
    everything = [p["id"] for p in client.get("/api/v1/posts", query_string={"sort": sort, "page_size": 100},
                                              headers=headers).get_json()]
    assert len(everything) == 11
    assert _walk(client, "/api/v1/posts", {"sort": sort, "page_size": 3}, headers) == everything
    anonymous = [p["id"] for p in client.get("/api/v1/posts", query_string={"sort": sort}).get_json()]
    assert len(anonymous) == 9 and _walk(client, "/api/v1/posts", {"sort": sort, "page_size": 4}) == anonymous


def test_a_users_posts_and_filters_walk_by_cursor(client, author, make_user, token):
    user, headers = author
    mine = _write(client, headers, 5, prefix="Zephyr")
    other = make_user()
    _write(client, {"Authorization": f"Bearer {token(other)}"}, 3, prefix="Zephyr")
    assert _walk(client, f"/api/v1/users/{user.id}/posts", {"page_size": 2}) == mine[::-1]
    assert len(_walk(client, "/api/v1/posts", {"q": "zeph", "page_size": 2})) == 8
    assert _walk(client, "/api/v1/posts", {"author_id": user.id, "page_size": 2, "sort": "id"}) == mine


def test_the_first_page_points_to_the_cursor_and_the_last_does_not(client, author):
    _, headers = author
    _write(client, headers, 3)
    first = client.get("/api/v1/posts", query_string={"page": 1, "page_size": 2})
    assert "X-Next-Cursor" in first.headers and json.loads(first.headers["X-Pagination"])["total"] == 3
    last = client.get("/api/v1/posts", query_string={"page": 2, "page_size": 2})
    assert len(last.get_json()) == 1 and "X-Next-Cursor" not in last.headers


def test_bad_cursors_are_400(client, author):
    _, headers = author
    _write(client, headers, 3)
    cursor = client.get("/api/v1/posts", query_string={"page_size": 1}).headers["X-Next-Cursor"]
    schema_invalid = ({"cursor": "garbage!"}, {"cursor": "x" * 2049})  # not base64url, too long: 422
    unusable = ({"cursor": "W10"}, {"cursor": "x" * 1001}, {"cursor": cursor, "sort": "title"},
                {"cursor": cursor, "page": 2}, {"cursor": encode_cursor("-created_at", "x", 1)})
    for query in (*schema_invalid, *unusable):
        response = client.get("/api/v1/posts", query_string=query)
        assert response.status_code == (422 if query in schema_invalid else 400), query
        assert "cursor" in json.dumps(response.get_json()["errors"]), response.get_json()


def test_a_new_post_counts_at_once_and_a_deleted_one_stops_counting(client, author, make_user, token):
    user, headers = author
    _write(client, headers, 2)
    assert _total(client.get("/api/v1/posts")) == 2
    assert _total(client.get("/api/v1/posts")) == 2  # now cached
    assert _total(client.get(f"/api/v1/users/{user.id}/posts")) == 2
    [new] = _write(client, headers, 1)
    assert _total(client.get("/api/v1/posts")) == 3
    assert _total(client.get(f"/api/v1/users/{user.id}/posts")) == 3
    [draft] = _write(client, headers, 1, published=False)
    assert _total(client.get("/api/v1/posts")) == 3
    assert _total(client.get("/api/v1/posts", headers=headers)) == 4  # the author sees their draft
    assert client.patch(f"/api/v1/posts/{draft}", json={"published": True}, headers=headers).status_code == 200
    assert _total(client.get("/api/v1/posts")) == 4
    assert client.delete(f"/api/v1/posts/{new}", headers=headers).status_code == 204
    assert _total(client.get("/api/v1/posts")) == 3


def test_deleting_a_user_recounts_the_posts_the_database_deleted(client, author, make_user, token):
    user, headers = author
    _write(client, headers, 2)
    assert _total(client.get("/api/v1/posts")) == 2
    admin = make_user(role="admin")
    response = client.delete(f"/api/v1/users/{user.id}", headers={"Authorization": f"Bearer {token(admin)}"})
    assert response.status_code == 204
    assert _total(client.get("/api/v1/posts")) == 0


def test_large_totals_are_estimated_and_say_so(client, author, app, monkeypatch):
    _, headers = author
    _write(client, headers, 4)
    monkeypatch.setattr(counting, "EXACT_COUNT_UP_TO", 2)
    _write(client, headers, 1)  # a write: the cached total is re-counted
    metadata = json.loads(client.get("/api/v1/posts").headers["X-Pagination"])
    with app.app_context():
        from webapp.extensions import db

        postgres = db.engine.dialect.name == "postgresql"
    if postgres:  # above the bound: the planner's estimate, never below the bound it counted to
        assert metadata["total_is_estimate"] is True and metadata["total"] >= 3
    else:  # SQLite counts exactly
        assert metadata["total"] == 5 and "total_is_estimate" not in metadata


def test_graphql_skip_is_bounded(client, author):
    _, headers = author
    _write(client, headers, 2)
    body = client.post("/graphql", json={"query": "{ posts(skip: 1, limit: 5) { title } }"}).get_json()
    assert len(body["data"]["posts"]) == 1
    body = client.post("/graphql", json={"query": "{ posts(skip: 10001) { title } }"}).get_json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
