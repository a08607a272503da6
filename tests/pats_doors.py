"""The doors' personal-access-token operations for tests/test_pats*.py: one call, either door."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.doors import REST_STATUS, Outcome
from webapp.pats.models import PersonalAccessToken

TOKEN_FIELDS = "id name scopes prefix createdAt expiresAt lastUsedAt"


# --- the doors' token operations ---------------------------------------------------------------

def create(door, token, name="deploy script", scopes=("read",), days=None):
    body = {"name": name, "scopes": list(scopes)}
    if days is not None:
        body["expires_in_days"] = days
    if door.name == "rest":
        return door._call("POST", "/users/me/tokens", token, json=body)
    variables = {"name": name, "scopes": list(scopes)}
    if days is not None:
        variables["expiresInDays"] = days
    return door.query(f"mutation($i: CreateTokenInput!) {{ createToken(input: $i) {{ {TOKEN_FIELDS} token }} }}",
                      {"i": variables}, token=token, key="createToken")


def my_tokens(door, token):
    if door.name == "rest":
        return door._call("GET", "/users/me/tokens", token)
    return door.query(f"{{ myTokens {{ {TOKEN_FIELDS} }} }}", token=token, key="myTokens")


def tokens_of(door, token, user_id):
    if door.name == "rest":
        return door._call("GET", f"/users/{user_id}/tokens", token)
    return door.query(f"query($u: Int!) {{ tokens(userId: $u) {{ {TOKEN_FIELDS} }} }}", {"u": user_id},
                      token=token, key="tokens")


def revoke(door, token, token_id, user_id=None):
    if door.name == "rest":
        path = "/users/me/tokens" if user_id is None else f"/users/{user_id}/tokens"
        return door._call("DELETE", f"{path}/{token_id}", token)
    return door.query("mutation($id: Int!, $u: Int) { revokeToken(id: $id, userId: $u) }",
                      {"id": token_id, "u": user_id}, token=token, key="revokeToken")


def change_password(door, token):
    """REST only: GraphQL has no password change."""
    response = door.client.post("/api/v1/auth/password", headers={"Authorization": f"Bearer {token}"},
                                json={"current_password": PASSWORD, "new_password": "a brand new passphrase"})
    return Outcome(REST_STATUS.get(response.status_code, str(response.status_code)), response.get_json(), response)


def list_sessions(door, token):
    if door.name == "rest":
        return door._call("GET", "/users/me/sessions", token)
    return door.query("{ sessions { id } }", token=token, key="sessions")


def revoke_session(door, token, sid):
    if door.name == "rest":
        return door._call("DELETE", f"/users/me/sessions/{sid}", token)
    return door.query("mutation($id: String!) { revokeSession(id: $id) }", {"id": sid}, token=token,
                      key="revokeSession")


def enroll_totp(door, token):
    if door.name == "rest":
        return door._call("POST", "/auth/mfa/totp", token)
    return door.query("mutation { enrollTotp { secret otpauthUrl } }", token=token, key="enrollTotp")


def account_export(door, token):
    if door.name == "rest":
        return door._call("POST", "/users/me/export", token)
    return door.query("mutation { requestMyDataExport { id } }", token=token, key="requestMyDataExport")


def cancel_job(door, token, job_id):
    if door.name == "rest":
        return door._call("DELETE", f"/jobs/{job_id}", token)
    return door.query("mutation($id: Int!) { cancelJob(id: $id) { id } }", {"id": job_id}, token=token,
                      key="cancelJob")


@pytest.fixture
def pat(door, token):
    """`pat(user, scopes)`: a new personal access token of the user's, made through this door."""
    def make(user, scopes=("read",), **kwargs):
        outcome = create(door, token(user), scopes=scopes, **kwargs)
        assert outcome.ok, outcome.data
        return outcome.data["token"]
    return make


def stored(query_db, **where):
    return query_db(lambda s: s.execute(select(PersonalAccessToken).filter_by(**where)).scalars().all())
