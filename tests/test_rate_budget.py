"""The default rate limit is one budget per caller (user, else IP) that every endpoint draws from,
GraphQL included; the probes and static files stay outside it. SQLite, and through Redis."""
from __future__ import annotations


import pytest

from conf.settings import TestingConfig as Settings
from tests.conftest import PASSWORD
from tests.doors import DOORS, RestDoor, bearer
from webapp import create_app
from webapp.cli import upgrade
from webapp.extensions import db
from webapp.users.services import create_user

HIGH = {name: "1000/minute" for name in ("RATELIMIT_LOGIN_IP", "RATELIMIT_LOGIN_EMAIL", "RATELIMIT_LOGIN_FAILURES",
                                          "RATELIMIT_SIGNUP_IP", "RATELIMIT_PASSWORD_RESET_IP")}


@pytest.fixture
def budget_app(tmp_path):
    """`build(limit, redis_url="")`: an app of its own with users alice and bob and that default limit."""
    counter = iter(range(100))

    def build(limit: str, redis_url: str = "", same_database_as=None, **overrides):
        home = tmp_path / f"app{next(counter)}"
        home.mkdir()
        database = same_database_as.config["DATABASE_URL"] if same_database_as else f"sqlite:///{home / 'rb.db'}"
        config = Settings().override(INSTANCE_PATH=home, DATABASE_URL=database, REDIS_URL=redis_url,
                                     RATELIMIT_DEFAULT=limit, **{**HIGH, **overrides})
        app = create_app(config)
        if same_database_as is None:
            with app.app_context():
                upgrade()
                for name in ("alice", "bob"):
                    create_user(db.session, name=name.title(), email=f"{name}@example.com", password=PASSWORD)
                db.session.remove()
        return app
    return build


def _tokens(app, *names, ip="10.9.9.9"):
    """Access tokens, signed in from an address of their own so the logins spend no test IP's budget."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return [RestDoor(client).login(f"{name}@example.com", PASSWORD).data["access_token"] for name in names]


ME = "{ me { id } }"


def _calls(client, token=None):
    """One call of each kind; the status each answered with (GraphQL: 429 or its error code)."""
    def graphql():
        response = client.post("/graphql", json={"query": ME}, headers=bearer(token))
        errors = (response.get_json() or {}).get("errors") or []
        return errors[0]["extensions"]["code"] if errors and response.status_code == 429 else response.status_code
    return {"users/me": lambda: client.get("/api/v1/users/me", headers=bearer(token)).status_code,
            "posts": lambda: client.get("/api/v1/posts", headers=bearer(token)).status_code,
            "graphql": graphql}


@pytest.mark.parametrize("spent_on", ["users/me", "posts", "graphql"])
def test_one_budget_per_user_across_every_endpoint_and_both_doors(budget_app, spent_on):
    app = budget_app("4/minute")
    alice, bob = _tokens(app, "alice", "bob")
    client = app.test_client()
    calls = _calls(client, alice)
    assert [calls[spent_on]() for _ in range(4)] == [200] * 4
    refused = {name: call() for name, call in calls.items()}
    assert refused == {"users/me": 429, "posts": 429, "graphql": "RATE_LIMITED"}
    response = client.get("/api/v1/posts", headers=bearer(alice))
    assert int(response.headers["Retry-After"]) >= 1 and response.get_json()["code"] == 429
    assert {name: call() for name, call in _calls(client, bob).items()} == {"users/me": 200, "posts": 200,
                                                                           "graphql": 200}
    for probe in ("/health", "/ready", "/metrics"):  # outside every budget (whatever else they answer)
        assert client.get(probe, headers=bearer(alice)).status_code != 429, probe


def test_anonymous_callers_share_one_budget_per_ip(budget_app):
    app = budget_app("3/minute")
    here, there = app.test_client(), app.test_client()
    here.environ_base["REMOTE_ADDR"], there.environ_base["REMOTE_ADDR"] = "10.0.0.1", "10.0.0.2"
    assert here.get("/api/v1/posts").status_code == 200
    assert here.post("/graphql", json={"query": "{ __typename }"}).status_code == 200
    assert DOORS["rest"](here).login("alice@example.com", "wrong password!").status == "unauthenticated"
    assert here.get("/api/v1/posts").status_code == 429
    assert here.post("/graphql", json={"query": "{ __typename }"}).status_code == 429
    assert DOORS["graphql"](here).login("alice@example.com", PASSWORD).status == "rate_limited"
    assert there.get("/api/v1/posts").status_code == 200  # another address has its own budget
    assert there.post("/graphql", json={"query": "{ __typename }"}).status_code == 200


def test_a_signed_in_budget_is_not_the_ips(budget_app):
    """The user's requests draw on the user's budget, not on the address they come from."""
    app = budget_app("2/minute")
    [alice] = _tokens(app, "alice", ip="10.0.0.7")
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.7"
    assert client.get("/api/v1/users/me", headers=bearer(alice)).status_code == 200
    assert client.get("/api/v1/posts", headers=bearer(alice)).status_code == 200
    assert client.get("/api/v1/posts", headers=bearer(alice)).status_code == 429
    assert client.get("/api/v1/posts").status_code == 200  # anonymous from the same IP: 1 of 2 spent by the login


def test_the_budget_holds_with_rate_limit_headers_on(budget_app):
    """RATELIMIT_HEADERS sends every request down flask-limiter's own path: the same one budget."""
    app = budget_app("3/minute", RATELIMIT_HEADERS=True)
    [alice] = _tokens(app, "alice")
    client = app.test_client()
    first = client.get("/api/v1/users/me", headers=bearer(alice))
    assert first.headers["RateLimit-Limit"] == "3" and first.headers["RateLimit-Remaining"] == "2"
    second = client.get("/api/v1/posts", headers=bearer(alice))
    assert second.headers["RateLimit-Remaining"] == "1"
    assert client.post("/graphql", json={"query": ME}, headers=bearer(alice)).status_code == 200
    assert client.get("/api/v1/posts", headers=bearer(alice)).status_code == 429


@pytest.mark.services
def test_one_budget_across_endpoints_and_hosts_through_redis(budget_app, redis_url):
    """Two hosts (apps) on one database and one Redis: the user's budget is spent wherever they call."""
    first = budget_app("4/minute", redis_url=redis_url)
    second = budget_app("4/minute", redis_url=redis_url, same_database_as=first)
    alice, bob = _tokens(first, "alice", "bob")
    one, two = first.test_client(), second.test_client()
    assert one.get("/api/v1/users/me", headers=bearer(alice)).status_code == 200
    assert two.get("/api/v1/posts", headers=bearer(alice)).status_code == 200
    assert one.post("/graphql", json={"query": ME}, headers=bearer(alice)).status_code == 200
    assert two.get("/api/v1/users/me", headers=bearer(alice)).status_code == 200
    assert one.get("/api/v1/posts", headers=bearer(alice)).status_code == 429
    assert two.post("/graphql", json={"query": ME}, headers=bearer(alice)).status_code == 429
    assert one.get("/api/v1/users/me", headers=bearer(bob)).status_code == 200
