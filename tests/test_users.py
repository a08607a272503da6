"""Users: sign-up, visibility, the directory, edits and deletion — through both doors."""
from __future__ import annotations

import json

import pytest

from tests.conftest import PASSWORD
from webapp.users.models import User

PRIVATE = {"email", "is_active", "email_verified", "updated_at"}


def test_sign_up_returns_the_private_view(door, query_db):
    outcome = door.signup("Ada Lovelace", "  Ada@Example.COM ", PASSWORD)
    assert outcome.ok, outcome
    user = outcome.data
    assert user["email"] == "ada@example.com"
    assert user["role"] == "user" and user["is_active"] is True and user["email_verified"] is None
    assert user["profile"]["first_name"] == ""
    stored = query_db(lambda s: s.get(User, user["id"]))
    assert stored.email == "ada@example.com" and stored.profile is not None
    if door.name == "rest":
        assert outcome.raw.status_code == 201


def test_sign_up_with_a_taken_email_conflicts_case_insensitively(door, make_user, query_db):
    make_user(email="taken@example.com")
    outcome = door.signup("Copy", "TAKEN@example.com", PASSWORD)
    assert outcome.status == "conflict"
    assert query_db(lambda s: s.query(User).count()) == 1
    if door.name == "rest":
        assert outcome.raw.status_code == 409


@pytest.mark.parametrize("name,email", [("", "a@example.com"), ("Ann", "not-an-email"), ("A\x00nn", "a@example.com"),
                                        ("x" * 101, "a@example.com")])
def test_sign_up_validates_every_field(door, name, email, query_db):
    outcome = door.signup(name, email, PASSWORD)
    assert outcome.status == "bad_input"
    assert query_db(lambda s: s.query(User).count()) == 0


def test_sign_up_validation_error_names_the_fields(client):
    response = client.post("/api/v1/users", json={"name": "", "email": "nope", "password": "short"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == 422 and body["status"] == "Unprocessable Entity"
    assert {"name", "email", "password"} <= set(body["errors"])


def test_me_is_the_private_view(door, make_user, token):
    user = make_user()
    outcome = door.me(token(user))
    assert outcome.ok
    assert outcome.data["id"] == user.id and outcome.data["email"] == user.email


def test_others_see_the_public_view(door, make_user, token):
    alice, bob = make_user(), make_user()
    outcome = door.get_user(token(bob), alice.id)
    assert outcome.ok
    data = outcome.data
    assert data["name"] == alice.name and data["id"] == alice.id
    if door.name == "rest":
        assert not PRIVATE & set(data)
    else:
        assert all(data[key] is None for key in PRIVATE)


def test_admins_see_the_private_view(door, make_user, token):
    admin, alice = make_user(role="admin"), make_user()
    data = door.get_user(token(admin), alice.id).data
    assert data["email"] == alice.email and data["is_active"] is True


def test_unknown_user_is_not_found(door, make_user, token):
    assert door.get_user(token(make_user()), 987654).status == "not_found"


def test_reads_need_a_token(door, make_user):
    user = make_user()
    assert door.get_user(None, user.id).status == "unauthenticated"
    assert door.list_users(None).status == "unauthenticated"
    assert door.me(None).status == "unauthenticated"


def test_no_response_contains_a_password_hash(door, make_user, token, client):
    admin = make_user(role="admin")
    user = make_user()
    admin_token = token(admin)
    bodies = [door.me(admin_token).raw.data, door.get_user(admin_token, user.id).raw.data,
              door.list_users(admin_token).raw.data, door.signup("New", "new@example.com", PASSWORD).raw.data,
              door.update_user(admin_token, user.id, name="Changed").raw.data]
    for body in bodies:
        text = body.decode()
        assert "$argon2" not in text and "password_hash" not in text and "passwordHash" not in text


def test_list_pages_with_a_header(client, make_user, token):
    users = [make_user() for _ in range(5)]
    response = client.get("/api/v1/users?page=2&page_size=2", headers={"Authorization": f"Bearer {token(users[0])}"})
    assert response.status_code == 200
    assert [u["id"] for u in response.get_json()] == [users[2].id, users[3].id]
    pagination = json.loads(response.headers["X-Pagination"])
    assert pagination == {"total": 5, "total_pages": 3, "first_page": 1, "last_page": 3, "page": 2,
                          "previous_page": 1, "next_page": 3}


def test_pagination_header_matches_flask_smorest():
    """Our X-Pagination skips flask-smorest's per-request schema; the fields must stay the same."""
    import flask_smorest

    from webapp.rest.common import Blueprint

    for count in (0, 1, 5, 20, 21, 100):
        for size in (1, 2, 20):
            for page in (1, 2, 3, 50):
                assert (Blueprint._make_pagination_metadata(page, size, count)
                        == flask_smorest.Blueprint._make_pagination_metadata(page, size, count)), (page, size, count)


def test_page_size_is_capped_at_100(client, make_user, token):
    response = client.get("/api/v1/users?page_size=101", headers={"Authorization": f"Bearer {token(make_user())}"})
    assert response.status_code == 422
    assert "page_size" in response.get_json()["errors"]


def test_graphql_limit_is_capped_at_100(door, make_user, token, app):
    viewer = make_user()
    from webapp.extensions import db
    from webapp.users.services import create_user

    with app.app_context():
        from webapp.auth.passwords import passwords
        hashed = passwords.hash(PASSWORD)
        db.session.add_all([User(name=f"Bulk {i}", email=f"bulk{i}@example.com", password_hash=hashed)
                            for i in range(105)])
        db.session.commit()
        db.session.remove()
    if door.name == "graphql":
        outcome = door.list_users(token(viewer), limit=500)
        assert outcome.ok and len(outcome.data) == 100
    else:
        assert door.list_users(token(viewer), limit=100).ok


def test_search_matches_names_for_everyone_and_email_prefix_for_admins(door, make_user, token):
    admin = make_user(role="admin", name="Root")
    user = make_user(name="Plain")
    make_user(name="Grace Hopper", email="zeta@example.com")
    make_user(name="Someone", email="grace.s@example.com")
    by_user = door.search_users(token(user), "grace")
    assert by_user.ok and [u["name"] for u in by_user.data] == ["Grace Hopper"]
    by_admin = door.search_users(token(admin), "grace")
    assert sorted(u["name"] for u in by_admin.data) == ["Grace Hopper", "Someone"]


def test_search_treats_wildcards_literally(door, make_user, token):
    viewer = make_user(name="Viewer")
    make_user(name="Percent")
    assert door.search_users(token(viewer), "%").data == []


def test_sort_orders_the_list(client, make_user, token):
    make_user(name="Charlie"), make_user(name="alpha"), make_user(name="Bravo")
    viewer = make_user(name="Delta")
    headers = {"Authorization": f"Bearer {token(viewer)}"}
    ids = [u["id"] for u in client.get("/api/v1/users?sort=-id", headers=headers).get_json()]
    assert ids == sorted(ids, reverse=True)
    names = [u["name"] for u in client.get("/api/v1/users?sort=-created_at", headers=headers).get_json()]
    assert names[0] == "Delta"
    assert client.get("/api/v1/users?sort=password_hash", headers=headers).status_code == 422


def test_users_edit_themselves(door, make_user, token, query_db):
    user = make_user()
    outcome = door.update_user(token(user), user.id, name="New Name")
    assert outcome.ok and outcome.data["name"] == "New Name"
    assert query_db(lambda s: s.get(User, user.id).name) == "New Name"


def test_user_a_cannot_edit_or_delete_user_b(door, make_user, token, query_db):
    alice, bob = make_user(), make_user()
    alice_token = token(alice)
    assert door.update_user(alice_token, bob.id, name="Hacked").status == "forbidden"
    assert door.delete_user(alice_token, bob.id).status == "forbidden"
    stored = query_db(lambda s: s.get(User, bob.id))
    assert stored is not None and stored.name == bob.name


@pytest.mark.parametrize("changes", [{"role": "admin"}, {"is_active": False}, {"role": "user"},
                                     {"name": "Sneaky", "role": "admin"}])
def test_only_admins_change_role_or_is_active(door, make_user, token, query_db, changes):
    user = make_user()
    outcome = door.update_user(token(user), user.id, **changes)
    assert outcome.status == "forbidden"
    stored = query_db(lambda s: s.get(User, user.id))
    assert stored.role == "user" and stored.is_active is True and stored.name == user.name


def test_admins_change_role_and_is_active(door, make_user, token, query_db):
    admin, user = make_user(role="admin"), make_user()
    outcome = door.update_user(token(admin), user.id, role="admin", is_active=False)
    assert outcome.ok
    stored = query_db(lambda s: s.get(User, user.id))
    assert stored.role == "admin" and stored.is_active is False


def test_changing_email_requires_verifying_it_again(door, make_user, token, query_db):
    user = make_user(verified=True)
    outcome = door.update_user(token(user), user.id, email="New.Address@example.com")
    assert outcome.ok and outcome.data["email"] == "new.address@example.com"
    assert outcome.data["email_verified"] is None
    assert query_db(lambda s: s.get(User, user.id).email_verified) is None


def test_changing_email_to_a_taken_one_conflicts(door, make_user, token):
    alice, bob = make_user(), make_user()
    assert door.update_user(token(alice), alice.id, email=bob.email.upper()).status == "conflict"


def test_invalid_edits_are_rejected(door, make_user, token):
    user = make_user()
    assert door.update_user(token(user), user.id, email="nope").status == "bad_input"
    assert door.update_user(token(user), user.id, name="  ").status == "bad_input"


def test_put_replaces_and_requires_name_and_email(client, make_user, token):
    user = make_user()
    headers = {"Authorization": f"Bearer {token(user)}"}
    response = client.put(f"/api/v1/users/{user.id}", json={"name": "Only Name"}, headers=headers)
    assert response.status_code == 422 and "email" in response.get_json()["errors"]
    response = client.put(f"/api/v1/users/{user.id}", json={"name": "Whole", "email": user.email}, headers=headers)
    assert response.status_code == 200 and response.get_json()["name"] == "Whole"


def test_users_delete_themselves_and_their_tokens_die(door, make_user, token, query_db):
    user = make_user()
    user_token = token(user)
    assert door.delete_user(user_token, user.id).ok
    assert query_db(lambda s: s.get(User, user.id)) is None
    assert door.me(user_token).status == "unauthenticated"


def test_admins_delete_anyone(door, make_user, token, query_db):
    admin, user = make_user(role="admin"), make_user()
    assert door.delete_user(token(admin), user.id).ok
    assert query_db(lambda s: s.get(User, user.id)) is None


def test_the_last_admin_cannot_be_deleted_or_demoted(door, make_user, token, query_db):
    admin = make_user(role="admin")
    admin_token = token(admin)
    assert door.delete_user(admin_token, admin.id).status == "conflict"
    assert door.update_user(admin_token, admin.id, role="user").status == "conflict"
    assert query_db(lambda s: s.get(User, admin.id).role) == "admin"
    second = make_user(role="admin")
    assert door.delete_user(admin_token, second.id).ok


def test_delete_status_is_204(client, make_user, token):
    user = make_user()
    response = client.delete(f"/api/v1/users/{user.id}", headers={"Authorization": f"Bearer {token(user)}"})
    assert response.status_code == 204 and response.data == b""


def test_cli_create_admin(runner, query_db):
    result = runner.invoke(args=["create-admin", "--email", "Boss@Example.com", "--name", "Boss",
                                 "--password", "a long password"])
    assert result.exit_code == 0, result.output
    stored = query_db(lambda s: s.query(User).filter_by(email="boss@example.com").one())
    assert stored.role == "admin"


def test_cli_create_admin_prompts_for_the_password(runner, query_db):
    result = runner.invoke(args=["create-admin", "--email", "p@example.com", "--name", "P"],
                           input="prompted password\nprompted password\n")
    assert result.exit_code == 0, result.output
    assert query_db(lambda s: s.query(User).filter_by(email="p@example.com").one().role) == "admin"


def test_cli_create_admin_refuses_a_short_password(runner, query_db):
    result = runner.invoke(args=["create-admin", "--email", "p@example.com", "--name", "P", "--password", "short"])
    assert result.exit_code != 0 and "password" in result.output
    assert query_db(lambda s: s.query(User).count()) == 0


def test_cli_seed_creates_demo_users_with_posts(runner, query_db):
    from webapp.posts.models import Post

    result = runner.invoke(args=["seed", "--users", "3", "--posts", "4"])
    assert result.exit_code == 0, result.output
    assert query_db(lambda s: s.query(User).filter(User.email.like("demo%")).count()) == 3
    assert query_db(lambda s: s.query(Post).count()) == 12
    again = runner.invoke(args=["seed", "--users", "3", "--posts", "4"])  # idempotent
    assert again.exit_code == 0 and query_db(lambda s: s.query(Post).count()) == 12
