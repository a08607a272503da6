"""A GraphQL document's size is counted before it runs, refused above GRAPHQL_MAX_NODES, and charged.

The size is the number of objects the answer could hold: a list counts its `limit` (its default
when left out, at most 100) times one plus what each item selects; an object once per parent
item; fragments are followed (webapp/graphql/cost.py).
"""
from __future__ import annotations

import os

import pytest
from redis import Redis

from conf.settings import TestingConfig as Settings
from tests.test_graphql_batching import counted, seed
from webapp import create_app
from webapp.cli import upgrade

FAN_OUT = "{ posts(limit:100) { author { posts(limit:100) { author { posts(limit:100) { id title } } } } } }"
FAN_OUT_SIZE = 100 + 100 + 100 * 100 + 100 * 100 + 100 * 100 * 100  # 1,020,200
AT_LIMIT = "{ posts(limit: 100) { author { posts(limit: 98) { id } } } }"  # 100 + 100 + 9,800 = 10,000


def post(client, query, variables=None, headers=None):
    payload = {"query": query} if variables is None else {"query": query, "variables": variables}
    response = client.post("/graphql", json=payload, headers=headers or {})
    return response.get_json()


def assert_too_large(body, size, limit=10_000):
    assert body["data"] is None, body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert str(size) in error["message"] and str(limit) in error["message"]
    assert error["extensions"]["nodes"] == size and error["extensions"]["maxNodes"] == limit


def test_the_97_byte_fan_out_is_refused_with_its_size_before_any_sql(app, client):
    assert len(FAN_OUT) == 97
    with counted(app) as statements:
        body = post(client, FAN_OUT)
    assert_too_large(body, FAN_OUT_SIZE)
    assert statements == []  # anonymous: not even the authentication needs the database


def test_signed_in_the_refusal_runs_only_what_authentication_needs(app, client, make_user, token):
    headers = {"Authorization": f"Bearer {token(make_user())}"}
    post(client, "{ __typename }", headers=headers)  # warm-up
    with counted(app) as baseline:
        assert post(client, "{ __typename }", headers=headers) == {"data": {"__typename": "Query"}}
    with counted(app) as statements:
        assert_too_large(post(client, FAN_OUT, headers=headers), FAN_OUT_SIZE)
    assert len(statements) == len(baseline)


def test_a_document_at_the_limit_runs_and_one_more_item_is_refused(app, client, make_user):
    seed(app, make_user, users=2, posts_each=3)
    body = post(client, AT_LIMIT)
    assert "errors" not in body, body
    assert len(body["data"]["posts"]) == 4 and body["data"]["posts"][0]["author"]["posts"]
    assert_too_large(post(client, AT_LIMIT.replace("98", "99")), 10_100)


def test_variables_feed_the_size(client):
    query = "query($n: Int!) { posts(limit: 100) { author { posts(limit: $n) { id } } } }"
    assert "errors" not in post(client, query, {"n": 98})
    assert_too_large(post(client, query, {"n": 99}), 10_100)
    assert "errors" not in post(client, query, {"n": 98})  # the cached plan still reads the variables
    with_default = "query($n: Int = 99) { posts(limit: 100) { author { posts(limit: $n) { id } } } }"
    assert_too_large(post(client, with_default), 10_100)
    assert "errors" not in post(client, with_default, {"n": 5})


def test_a_limit_above_the_cap_counts_the_cap(client):
    assert_too_large(post(client, "{ posts(limit: 5000) { author { posts(limit: 5000) { id } } } }"), 10_200)


def test_a_left_out_limit_counts_the_cap(client):
    # PRODUCT.md: a list field costs its `limit`, or its cap when it has none: 100 + 100 + 10,000 + ...
    assert_too_large(post(client, "{ posts { author { posts { author { posts { id } } } } } }"), 1_020_200)
    # the same for a variable that is declared but not sent
    assert_too_large(post(client, "query($n: Int) { posts { author { posts(limit: $n) { id } } } }"), 10_200)
    assert "errors" not in post(client, "{ posts { author { posts(limit: 5) { id } } } }")  # 100 + 100 + 500


def test_named_and_inline_fragments_are_counted(client):
    named = """query { posts(limit: 100) { ...Outer } }
      fragment Outer on Post { author { ...Inner } }
      fragment Inner on User { posts(limit: 99) { id } }"""
    assert_too_large(post(client, named), 10_100)
    inline = "{ posts(limit: 100) { ... on Post { author { ... { posts(limit: 99) { id } } } } } }"
    assert_too_large(post(client, inline), 10_100)
    twice = "{ posts(limit: 100) { author { ...P ...P } } } fragment P on User { posts(limit: 60) { id } }"
    assert_too_large(post(client, twice), 100 + 100 + 2 * 100 * 60)


def test_aliases_each_count(client):
    query = "{ a: posts(limit: 100) { author { posts(limit: 50) { id } } } b: posts(limit: 100) { author { posts(limit: 50) { id } } } }"
    assert_too_large(post(client, query), 2 * (100 + 100 + 5_000))


def test_the_limit_is_a_setting(tmp_path):
    config = Settings().override(INSTANCE_PATH=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'n.db'}",
                                      MEDIA_ROOT=tmp_path / "media", GRAPHQL_MAX_NODES=150)
    app = create_app(config)
    with app.app_context():
        upgrade()
    client = app.test_client()
    assert "errors" not in post(client, "{ posts(limit: 75) { author { id } } }")  # 150
    assert_too_large(post(client, "{ posts(limit: 76) { author { id } } }"), 152, limit=150)


# --- the rate limit charges by the same size: 1 + nodes // 100 --------------------------------------

@pytest.fixture
def limited(tmp_path):
    """An app of its own with a small default limit; counting in Redis when TEST_REDIS_URL is set."""
    redis_url = os.environ.get("TEST_REDIS_URL", "")
    if redis_url:
        Redis.from_url(redis_url).flushdb()

    def build(default: str):
        config = Settings().override(INSTANCE_PATH=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'rl.db'}",
                                          MEDIA_ROOT=tmp_path / "media", REDIS_URL=redis_url,
                                          RATELIMIT_DEFAULT=default)
        app = create_app(config)
        with app.app_context():
            upgrade()
        return app
    return build


def caller(app, address):
    """A test client calling from `address`: each has a budget of its own (anonymous: per IP)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _statuses(client, query, times, method="post"):
    if method == "get":
        return [client.get("/graphql", query_string={"query": query}).status_code for _ in range(times)]
    return [client.post("/graphql", json={"query": query}).status_code for _ in range(times)]


def test_an_expensive_document_uses_the_budget_up_faster(limited):
    app = limited("10/minute")
    cheap, costly = caller(app, "198.51.100.1"), caller(app, "198.51.100.2")
    assert _statuses(cheap, "{ posts(limit: 99) { id } }", 11) == [200] * 10 + [429]  # 99 objects: 1 each
    # 100 posts + 100 authors = 200 objects: 3 each, so three fit in 10
    assert _statuses(costly, "{ posts(limit: 100) { author { id } } }", 4) == [200, 200, 200, 429]
    body = costly.post("/graphql", json={"query": "{ __typename }"}).get_json()
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


def test_get_requests_and_variables_are_charged_the_same_way(limited):
    app = limited("10/minute")
    by_get = caller(app, "198.51.100.3")
    assert _statuses(by_get, "{ posts(limit: 100) { author { id } } }", 4, method="get") == [200, 200, 200, 429]
    by_variable = caller(app, "198.51.100.4")
    query = "query($n: Int!) { posts(limit: $n) { author { id } } }"
    statuses = [by_variable.post("/graphql", json={"query": query, "variables": {"n": 100}}).status_code
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_a_refused_document_is_charged_as_one_at_the_limit(limited):
    app = limited("150/minute")
    client = caller(app, "198.51.100.5")
    first = client.post("/graphql", json={"query": FAN_OUT})
    assert first.status_code == 200 and first.get_json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert _statuses(client, "{ __typename }", 1) == [200]  # 101 + 1 of 150
    assert _statuses(client, FAN_OUT, 1) == [429]  # another 101 does not fit
