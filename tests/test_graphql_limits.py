"""Abusive GraphQL documents are refused before execution; production hides the schema."""
from __future__ import annotations

import pytest

from conf.settings import ProductionConfig
from webapp.graphql.schema import build_schema


def _deep(depth: int) -> str:
    """users { posts { author { posts { author ... } } } }: `depth` levels of real fields."""
    inner = "name"
    for level in range(depth - 1):
        inner = f"posts {{ {inner} }}" if level % 2 else f"author {{ {inner} }}"
    return f"{{ users {{ {inner} }} }}"


def test_depth_20_is_refused_before_execution(client):
    body = client.post("/graphql", json={"query": _deep(20)}).get_json()
    assert body["data"] is None
    assert "depth" in body["errors"][0]["message"].lower()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_fifty_aliases_are_refused(client, make_user, token):
    query = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(50)) + " }"
    body = client.post("/graphql", json={"query": query},
                       headers={"Authorization": f"Bearer {token(make_user())}"}).get_json()
    assert body["data"] is None and "alias" in body["errors"][0]["message"].lower()


def test_huge_documents_are_refused(client):
    query = "{ " + " ".join("__typename" for _ in range(3000)) + " }"
    body = client.post("/graphql", json={"query": query}).get_json()
    assert body.get("data") is None and "token" in body["errors"][0]["message"].lower()


def test_batched_documents_are_refused(client):
    response = client.post("/graphql", json=[{"query": "{ __typename }"}] * 5)
    assert response.status_code == 400


def test_mutations_never_run_over_get(client):
    response = client.get("/graphql", query_string={"query": 'mutation { login(email: "a@b.c", password: "x") { accessToken } }'})
    assert response.status_code in (400, 405)


def test_reasonable_queries_still_run(client, make_user, token):
    body = client.post("/graphql", json={"query": "{ me { id profile { firstName } } }"},
                       headers={"Authorization": f"Bearer {token(make_user())}"}).get_json()
    assert "errors" not in body


def test_production_schema_disables_introspection_and_suggestions():
    schema = build_schema(production=True)
    result = schema.execute_sync("{ __schema { types { name } } }")
    assert result.errors and "introspection" in result.errors[0].message.lower()
    result = schema.execute_sync("{ mee { id } }")
    assert result.errors and "Did you mean" not in result.errors[0].message


def test_production_masks_internal_errors(monkeypatch):
    from webapp.graphql import users as module

    schema = build_schema(production=True)

    def broken(*args, **kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(module.users, "list_users", broken)

    class Ctx:
        viewer = object()
        auth_error = None

        def require_viewer(self):
            return self.viewer

    result = schema.execute_sync("{ users { id } }", context_value=Ctx())
    assert result.errors[0].message == "Internal server error."
    assert result.errors[0].extensions["code"] == "INTERNAL_SERVER_ERROR"
