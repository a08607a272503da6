"""GET/DELETE /users/me/sessions and their GraphQL twins."""
from __future__ import annotations

import pytest

from tests.conftest import PASSWORD


def list_sessions(door, token):
    if door.name == "rest":
        return door._call("GET", "/users/me/sessions", token)
    return door.query("{ sessions { id createdAt lastUsedAt userAgent ip current } }", token=token, key="sessions")


def revoke(door, token, sid):
    if door.name == "rest":
        return door._call("DELETE", f"/users/me/sessions/{sid}", token)
    return door.query("mutation($id: String!) { revokeSession(id: $id) }", {"id": sid}, token=token,
                      key="revokeSession")


def test_sessions_list_one_per_sign_in_with_the_current_flagged(door, make_user):
    user = make_user()
    first = door.login(user.email, PASSWORD).data
    second = door.login(user.email, PASSWORD).data
    outcome = list_sessions(door, second["access_token"])
    assert outcome.ok and len(outcome.data) == 2
    assert [s["current"] for s in outcome.data] == [True, False]
    assert {"id", "created_at", "last_used_at", "user_agent", "ip", "current"} <= set(outcome.data[0])
    assert door.refresh(first["refresh_token"]).ok  # rotating keeps it one session
    assert len(list_sessions(door, second["access_token"]).data) == 2


def test_signing_a_session_out_stops_its_tokens_at_once(door, make_user):
    user = make_user()
    phone = door.login(user.email, PASSWORD).data
    laptop = door.login(user.email, PASSWORD).data
    phone_sid = next(s["id"] for s in list_sessions(door, laptop["access_token"]).data if not s["current"])
    assert revoke(door, laptop["access_token"], phone_sid).ok
    assert door.me(phone["access_token"]).status == "unauthenticated"
    assert door.refresh(phone["refresh_token"]).status == "unauthenticated"
    assert door.me(laptop["access_token"]).ok
    assert len(list_sessions(door, laptop["access_token"]).data) == 1


def test_nobody_signs_out_someone_elses_session(door, make_user, token):
    alice, bob = make_user(), make_user()
    bob_tokens = door.login(bob.email, PASSWORD).data
    bob_sid = list_sessions(door, bob_tokens["access_token"]).data[0]["id"]
    assert revoke(door, token(alice), bob_sid).status == "not_found"
    assert door.me(bob_tokens["access_token"]).ok


@pytest.mark.parametrize("sid", ["0" * 32, "short"])
def test_unknown_session_is_not_found(client, make_user, token, sid):
    response = client.delete(f"/api/v1/users/me/sessions/{sid}",
                             headers={"Authorization": f"Bearer {token(make_user())}"})
    assert response.status_code == 404 and response.get_json()["code"] == 404


def test_sessions_need_a_token(door):
    assert list_sessions(door, None).status == "unauthenticated"
