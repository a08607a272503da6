"""Hot reads come from the cache, and a client never reads its own write stale."""
from __future__ import annotations

import json
import re

from webapp.extensions import db


def _lookups(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {m[0]: float(m[1]) for m in re.findall(r'delta_cache_lookups_total\{result="(\w+)"\} (\S+)', text)}


def test_repeated_reads_hit_the_cache(client, make_user, token):
    alice, bob = make_user(), make_user()
    headers = {"Authorization": f"Bearer {token(bob)}"}
    before = _lookups(client)
    for _ in range(3):
        assert client.get(f"/api/v1/users/{alice.id}", headers=headers).status_code == 200
    after = _lookups(client)
    assert after.get("hit", 0) - before.get("hit", 0) >= 2
    assert after.get("miss", 0) - before.get("miss", 0) == 1


def test_writes_are_read_fresh_through_both_doors(door, make_user, token):
    alice, admin = make_user(), make_user(role="admin")
    alice_token, admin_token = token(alice), token(admin)
    assert door.get_user(admin_token, alice.id).data["name"] == alice.name  # now cached
    assert door.update_user(alice_token, alice.id, name="Fresh Name").ok
    assert door.get_user(admin_token, alice.id).data["name"] == "Fresh Name"
    assert door.update_user(admin_token, alice.id, role="admin").ok
    assert door.get_user(alice_token, alice.id).data["role"] == "admin"
    assert door.delete_user(admin_token, alice.id).ok
    assert door.get_user(admin_token, alice.id).status == "not_found"


def test_a_rolled_back_write_leaves_the_cache_alone(app, client, make_user, token):
    from webapp.users.models import User

    alice, bob = make_user(), make_user()
    headers = {"Authorization": f"Bearer {token(bob)}"}
    client.get(f"/api/v1/users/{alice.id}", headers=headers)
    with app.app_context():
        user = db.session.get(User, alice.id)
        user.name = "Never Committed"
        db.session.flush()
        db.session.rollback()
        db.session.remove()
    body = client.get(f"/api/v1/users/{alice.id}", headers=headers).get_json()
    assert body["name"] == alice.name


def test_visibility_is_applied_after_the_cache(client, make_user, token):
    alice, bob = make_user(), make_user()
    client.get(f"/api/v1/users/{alice.id}", headers={"Authorization": f"Bearer {token(alice)}"})  # private, cached
    public = client.get(f"/api/v1/users/{alice.id}", headers={"Authorization": f"Bearer {token(bob)}"}).get_json()
    assert "email" not in public


def test_post_reads_are_fresh_after_every_kind_of_write(door, client, make_user, token):
    author = make_user(name="Author")
    author_token = token(author)
    post = door.create_post(author_token, title="First", content="x", published=True).data
    assert door.get_post(None, post["id"]).data["title"] == "First"          # cached now
    assert door.list_posts(None).data[0]["title"] == "First"
    assert door.update_post(author_token, post["id"], title="Second").ok
    assert door.get_post(None, post["id"]).data["title"] == "Second"
    assert door.list_posts(None).data[0]["title"] == "Second"
    assert door.update_user(author_token, author.id, name="Renamed Author").ok
    assert door.get_post(None, post["id"]).data["author"]["name"] == "Renamed Author"
    assert door.list_posts(None).data[0]["author"]["name"] == "Renamed Author"
    assert door.update_post(author_token, post["id"], published=False).ok       # a draft now
    assert door.get_post(None, post["id"]).status == "not_found"
    assert door.list_posts(None).data == []
    assert door.get_post(author_token, post["id"]).ok                            # its author still sees it
    second = door.create_post(author_token, title="Another", content="y", published=True).data
    assert [p["id"] for p in door.list_posts(None).data] == [second["id"]]
    assert door.delete_post(author_token, second["id"]).ok
    assert door.list_posts(None).data == []


def test_post_list_totals_are_fresh(client, make_user, token):
    author = make_user()
    headers = {"Authorization": f"Bearer {token(author)}"}
    assert json.loads(client.get("/api/v1/posts").headers["X-Pagination"])["total"] == 0
    client.post("/api/v1/posts", json={"title": "One", "published": True}, headers=headers)
    assert json.loads(client.get("/api/v1/posts").headers["X-Pagination"])["total"] == 1
