"""Hostile input to /graphql: every request mistake is BAD_USER_INPUT, never a 500 or a masked error.

Run against a development and a production app. What the view cannot run (a body that is not
JSON or not a GraphQL request, a wrong method) is an HTTP 400/405 with GraphQL's error shape;
what the document or its variables get wrong is GraphQL's usual 200 with `data: null`. Each
request still logs its one JSON line, and production names no schema member ("Did you mean").
"""
from __future__ import annotations

import json
import logging
import os

import pytest

from conf.settings import DevelopmentConfig, ProductionConfig
from webapp import create_app
from webapp.cli import upgrade

SECRET = "s3cret-" * 10
DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "9" * 5000
LIMIT_VAR = "query($n: Int!) { posts(limit: $n) { id } }"
SEARCH_VAR = "query($q: String!) { posts(limit: 1) { id } searchUsers(query: $q) { id } }"

# name → (method, raw body or None, extra request kwargs, expected status)
RAW = {
    "not JSON": ("POST", "{", {}, 400),
    "JSON nested 100,000 deep": ("POST", DEEP, {}, 400),
    "JSON nested 100,000 deep in variables": ("POST", '{"query": "{ __typename }", "variables": {"a": %s}}' % DEEP, {}, 400),
    "a 5,000-digit number as the body": ("POST", HUGE, {}, 400),
    "a 5,000-digit variable": ("POST", json.dumps({"query": LIMIT_VAR})[:-1] + ', "variables": {"n": %s}}' % HUGE, {}, 400),
    "a lone surrogate in a variable": ("POST", '{"query": %s, "variables": {"q": "\\ud800"}}' % json.dumps(SEARCH_VAR), {}, 400),
    "a lone surrogate as a JSON escape in the document": ("POST", '{"query": "{ searchUsers(query: \\"\\udc00\\") { id } }"}', {}, 400),
    "NaN in variables": ("POST", '{"query": "{ __typename }", "variables": {"n": NaN}}', {}, 400),
    "a body that is not UTF-8": ("POST", b'{"query": "\xff"}', {}, 400),
    "a JSON number, not an object": ("POST", "5", {}, 400),
    "variables not an object": ("POST", '{"query": "{ __typename }", "variables": [1]}', {}, 400),
    "query not a string": ("POST", '{"query": 5}', {}, 400),
    "no query": ("POST", "{}", {}, 400),
    "a document padded past 100,000 characters with a comment": (
        "POST", json.dumps({"query": "#" + "x" * 200_000 + "\n{ __typename }"}), {}, 400),
    "a batch": ("POST", '[{"query": "{ __typename }"}, {"query": "{ __typename }"}]', {}, 400),
    "a form body": ("POST", None, {"data": {"query": "{ __typename }"}}, 400),
    "text/plain": ("POST", None, {"data": "{ __typename }", "content_type": "text/plain"}, 400),
    "PUT": ("PUT", "{}", {}, 405),
    "DELETE": ("DELETE", None, {}, 405),
    "a mutation over GET": ("GET", None, {"query_string": {"query": "mutation { logout }"}}, 400),
    "GET variables that are not JSON": ("GET", None, {"query_string": {"query": LIMIT_VAR, "variables": "{"}}, 400),
    "GET variables with a lone surrogate": ("GET", None, {"query_string": {"query": SEARCH_VAR, "variables": '{"q": "\\ud800"}'}}, 400),
    "GET with no query, asking for JSON": ("GET", None, {"headers": {"Accept": "application/json"}}, 400),
}

# name → (document, variables, a word the message must hold)
DOCUMENTS = {
    "a missing variable": (LIMIT_VAR, None, "$n"),
    "a mistyped variable": (LIMIT_VAR, {"n": "ten"}, "$n"),
    "a null for a required variable": (LIMIT_VAR, {"n": None}, "$n"),
    "a variable out of Int's range": (LIMIT_VAR, {"n": 2 ** 40}, "$n"),
    "an undeclared variable": ("{ posts(limit: $n) { id } }", None, "$n"),
    "a syntax error": ("{ posts { id ", None, "Syntax Error"),
    "an unknown field": ("{ postz { id } }", None, "postz"),
    "a wrong argument type": ('{ posts(limit: "ten") { id } }', None, "Int"),
    "a negative skip": ("{ posts(skip: -1) { id } }", None, "skip"),
    "a negative limit": ("{ posts(limit: -5) { id } }", None, "limit"),
    "a negative nested limit": ("{ posts(limit: 1) { author { posts(limit: -1) { id } } } }", None, "limit"),
    "a negative limit from a variable": (LIMIT_VAR, {"n": -3}, "limit"),
    "a negative skip from a variable": ("query($s: Int!) { posts(skip: $s) { id } }", {"s": -1}, "skip"),
    "a 5,000-digit Int literal": ("{ posts(limit: %s) { id } }" % HUGE, None, "5000"),
    "a 5,000-digit variable default": ("query($n: Int = %s) { posts(limit: $n) { id } }" % HUGE, None, "5000"),
    "a 5,000-digit float literal": ("{ posts(limit: %s.5) { id } }" % HUGE, None, "characters"),
    "a lone surrogate escape in a string literal": ('{ searchUsers(query: "\\ud800") { id } }', None, "Unicode"),
    "fragments doubling forty deep (2^40 selections)": (
        "{ posts { ...F0 } } " + " ".join(f"fragment F{i} on Post {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40))
        + " fragment F40 on Post { id }", None, "5000"),
    "a chain of 240 fragments": (
        "{ posts { ...F0 } } " + " ".join(f"fragment F{i} on Post {{ ...F{i + 1} }}" for i in range(240))
        + " fragment F240 on Post { id }", None, "64"),
    "an unknown operation name": ("query A { __typename }", None, None),
    "a subscription": ("subscription { posts { id } }", None, None),
}

SUGGESTING = {  # each makes graphql-core suggest a schema name in development
    "field": ("{ post(id: 1) { titel } }", None),
    "argument": ("{ posts(limt: 3) { id } }", None),
    "type": ("query($n: Intt) { posts(limit: $n) { id } }", None),
    "input field in a literal": ('mutation { createUser(input: {name: "a", emial: "b", password: "c"}) { id } }', None),
    "input field in a variable": ("mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
                                  {"i": {"name": "a", "emial": "b", "password": "c"}}),
    "fragment type": ("{ posts { ...F } } fragment F on Pots { id }", None),
}


@pytest.fixture(scope="module", params=["development", "production"])
def hostile_client(request, app, tmp_path_factory):
    """A client of an app in that configuration (the suite's database; SQLite files of its own)."""
    home = tmp_path_factory.mktemp(request.param)
    config_class = DevelopmentConfig if request.param == "development" else ProductionConfig
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{home / 'hostile.db'}"
    config = config_class().override(INSTANCE_PATH=home, MEDIA_ROOT=home / "media", DATABASE_URL=url, REDIS_URL="",
                                     SECRET_KEY=SECRET, JWT_SECRET_KEY=SECRET + "jwt")
    hostile_app = create_app(config)
    if not os.environ.get("TEST_DATABASE_URL"):  # else the suite's `app` fixture has migrated it
        with hostile_app.app_context():
            upgrade()
    client = hostile_app.test_client()
    client.env = request.param
    return client


@pytest.fixture
def request_log(caplog):
    caplog.set_level(logging.INFO, logger="webapp.request")
    return lambda: [record.fields for record in caplog.records if record.name == "webapp.request"]


def bad_user_input(response, request_log, production: bool) -> list[dict]:
    """GraphQL's error shape, every error BAD_USER_INPUT, and this request's one log line."""
    assert response.status_code < 500 and response.content_type == "application/json", response.get_data()
    body = response.get_json()
    assert body.get("data") is None and body["errors"], body
    for error in body["errors"]:
        assert error["extensions"]["code"] == "BAD_USER_INPUT", body
        assert error["message"] and len(error["message"]) < 400, error
        assert not production or "Did you mean" not in error["message"]
    lines = [line for line in request_log() if line["request_id"] == response.headers["X-Request-ID"]]
    assert len(lines) == 1 and lines[0]["status"] == response.status_code and lines[0]["path"] == "/graphql"
    return body["errors"]


@pytest.mark.parametrize("case", sorted(RAW))
def test_what_the_view_cannot_run_is_refused_in_graphql_shape(hostile_client, request_log, case):
    method, body, kwargs, status = RAW[case]
    if body is not None:
        kwargs = {**kwargs, "data": body, "content_type": "application/json"}
    response = hostile_client.open("/graphql", method=method, **kwargs)
    assert response.status_code == status, response.get_data()
    bad_user_input(response, request_log, hostile_client.env == "production")
    if status == 405:
        assert response.headers["Allow"] == "GET, POST, OPTIONS"


@pytest.mark.parametrize("case", sorted(DOCUMENTS))
def test_a_wrong_document_or_variable_is_bad_user_input(hostile_client, request_log, caplog, case):
    query, variables, word = DOCUMENTS[case]
    payload = {"query": query} if variables is None else {"query": query, "variables": variables}
    if case == "an unknown operation name":
        payload["operationName"] = "B"
    caplog.set_level(logging.INFO, logger="webapp.graphql")
    response = hostile_client.post("/graphql", json=payload)
    errors = bad_user_input(response, request_log, hostile_client.env == "production")
    if word:
        assert any(word in error["message"] for error in errors), errors
    # a client's mistake is not logged as an error of ours
    assert not [r for r in caplog.records if r.name == "webapp.graphql" and r.levelno >= logging.ERROR]


def test_a_5000_digit_literal_is_not_echoed(hostile_client, request_log):
    response = hostile_client.post("/graphql", json={"query": DOCUMENTS["a 5,000-digit Int literal"][0]})
    (error,) = bad_user_input(response, request_log, hostile_client.env == "production")
    assert "9999" not in error["message"] and "sys." not in error["message"]


@pytest.mark.parametrize("case", sorted(SUGGESTING))
def test_schema_names_are_suggested_only_outside_production(hostile_client, request_log, case):
    query, variables = SUGGESTING[case]
    payload = {"query": query} if variables is None else {"query": query, "variables": variables}
    errors = bad_user_input(hostile_client.post("/graphql", json=payload), request_log,
                            hostile_client.env == "production")
    suggested = any("Did you mean" in error["message"] for error in errors)
    assert suggested is (hostile_client.env != "production"), errors


def test_options_answers_without_a_body(hostile_client):
    response = hostile_client.options("/graphql")
    assert response.status_code in (200, 204) and response.get_data() == b""
    assert response.headers["Allow"] == "GET, POST, OPTIONS"


def test_a_good_request_still_runs(hostile_client):
    body = hostile_client.post("/graphql", json={"query": "{ posts(limit: 1, skip: 0) { id } }"}).get_json()
    assert body == {"data": {"posts": []}}
    response = hostile_client.get("/graphql", query_string={"query": "{ __typename }"})
    assert response.get_json() == {"data": {"__typename": "Query"}}
