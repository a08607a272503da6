"""One paging rule through both doors (PRODUCT.md): 20 items by default, 100 at most."""
from __future__ import annotations

import json

from webapp.db import utcnow
from webapp.extensions import db
from webapp.posts.models import Post


def seed_posts(app, author_id: int, count: int) -> None:
    with app.app_context():
        now = utcnow()
        db.session.add_all([Post(author_id=author_id, title=f"Post {n}", published=True, created_at=now)
                            for n in range(count)])
        db.session.commit()
        db.session.remove()


def graphql(client, query: str, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = client.post("/graphql", json={"query": query}, headers=headers).get_json()
    assert "errors" not in body, body
    return body["data"]


def test_lists_hold_20_items_by_default_through_both_doors(app, client, make_user, token):
    author = make_user()
    seed_posts(app, author.id, 45)
    tok = token(author)

    for path in ("/api/v1/posts", f"/api/v1/users/{author.id}/posts"):
        response = client.get(path, headers={"Authorization": f"Bearer {tok}"})
        assert response.status_code == 200 and len(response.get_json()) == 20, path
        metadata = json.loads(response.headers["X-Pagination"])
        assert (metadata["total"], metadata["total_pages"], metadata["next_page"]) == (45, 3, 2), path

    assert len(graphql(client, "{ posts { id } }")["posts"]) == 20
    assert len(graphql(client, f"{{ user(id: {author.id}) {{ posts {{ id }} }} }}", tok)["user"]["posts"]) == 20


def test_the_user_directory_holds_20_by_default_through_both_doors(client, make_user, token):
    users = [make_user() for _ in range(22)]
    tok = token(users[0])
    response = client.get("/api/v1/users", headers={"Authorization": f"Bearer {tok}"})
    assert len(response.get_json()) == 20
    assert json.loads(response.headers["X-Pagination"])["total_pages"] == 2
    assert len(graphql(client, "{ users { id } }", tok)["users"]) == 20


def test_the_cap_is_100_through_both_doors(app, client, make_user):
    author = make_user()
    seed_posts(app, author.id, 105)
    assert len(client.get("/api/v1/posts?page_size=100").get_json()) == 100
    refused = client.get("/api/v1/posts?page_size=101")
    assert refused.status_code == 422 and "page_size" in refused.get_json()["errors"]
    assert len(graphql(client, "{ posts(limit: 500) { id } }")["posts"]) == 100  # GraphQL clamps


def test_the_openapi_document_states_the_default_page_size(client):
    spec = client.get("/openapi.json").get_json()
    for path in ("/api/v1/posts", "/api/v1/users", "/api/v1/jobs", "/api/v1/users/{user_id}/posts"):
        parameters = {p["name"]: p["schema"] for p in spec["paths"][path]["get"]["parameters"] if "name" in p}
        assert parameters["page_size"]["default"] == 20 and parameters["page_size"]["maximum"] == 100, path
