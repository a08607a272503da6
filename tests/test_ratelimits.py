"""Rate limits: 429 with Retry-After and the error shape, through both doors, and without Redis."""
from __future__ import annotations

import time

import pytest
from redis import Redis

from conf.settings import TestingConfig as Settings
from tests.conftest import PASSWORD
from tests.doors import DOORS
from webapp import create_app
from webapp.cli import upgrade
from webapp.extensions import db
from webapp.users.services import create_user

LOW = {
    "RATELIMIT_DEFAULT": "1000/minute", "RATELIMIT_LOGIN_IP": "1000/minute", "RATELIMIT_LOGIN_EMAIL": "1000/minute",
    "RATELIMIT_LOGIN_FAILURES": "1000/minute", "RATELIMIT_SIGNUP_IP": "1000/minute",
    "RATELIMIT_PASSWORD_RESET_IP": "1000/minute",
}


@pytest.fixture
def limited(tmp_path):
    """An app of its own with the limits a test asks for (SQLite, or Redis when TEST_REDIS_URL is set)."""
    counter = iter(range(100))

    def build(redis_url: str = "", **limits):
        home = tmp_path / f"app{next(counter)}"
        home.mkdir()
        config = Settings().override(INSTANCE_PATH=home, DATABASE_URL=f"sqlite:///{home / 'rl.db'}",
                                     REDIS_URL=redis_url, **{**LOW, **limits})
        app = create_app(config)
        with app.app_context():
            upgrade()
            create_user(db.session, name="Victim", email="victim@example.com", password=PASSWORD)
            db.session.remove()
        return app
    return build


def _assert_429(outcome):
    assert outcome.status == "rate_limited", outcome
    if isinstance(outcome.data, dict):  # REST
        response = outcome.raw
        assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
        body = response.get_json()
        assert body["code"] == 429 and body["status"] == "Too Many Requests" and body["message"]


@pytest.mark.parametrize("door_name", sorted(DOORS))
def test_failed_logins_are_counted_per_account_whatever_the_ip(limited, door_name):
    app = limited(RATELIMIT_LOGIN_FAILURES="3/minute", TRUSTED_PROXIES=1)
    client = app.test_client()
    for n in range(3):
        client.environ_base["HTTP_X_FORWARDED_FOR"] = f"10.0.0.{n}"
        assert DOORS[door_name](client).login("victim@example.com", "wrong password!").status == "unauthenticated"
    client.environ_base["HTTP_X_FORWARDED_FOR"] = "10.0.0.99"
    outcome = DOORS[door_name](client).login("victim@example.com", PASSWORD)  # even the right password waits
    _assert_429(outcome)


@pytest.mark.parametrize("door_name", sorted(DOORS))
def test_login_is_limited_per_ip(limited, door_name):
    client = limited(RATELIMIT_LOGIN_IP="2/minute").test_client()
    door = DOORS[door_name](client)
    assert door.login("a@example.com", "whatever pw").status == "unauthenticated"
    assert door.login("b@example.com", "whatever pw").status == "unauthenticated"
    _assert_429(door.login("victim@example.com", PASSWORD))


@pytest.mark.parametrize("door_name", sorted(DOORS))
def test_sign_up_is_limited_per_ip(limited, door_name):
    client = limited(RATELIMIT_SIGNUP_IP="2/minute").test_client()
    door = DOORS[door_name](client)
    assert door.signup("One", "one@example.com", PASSWORD).ok
    assert door.signup("Two", "two@example.com", PASSWORD).ok
    _assert_429(door.signup("Three", "three@example.com", PASSWORD))


def test_password_reset_is_limited_per_ip(limited):
    client = limited(RATELIMIT_PASSWORD_RESET_IP="1/minute").test_client()
    assert client.post("/api/v1/auth/password-reset", json={"email": "x@example.com"}).status_code == 202
    response = client.post("/api/v1/auth/password-reset", json={"email": "y@example.com"})
    assert response.status_code == 429 and response.headers["Retry-After"]


def test_default_limit_refusal_has_retry_after_headers_and_the_error_shape(limited):
    client = limited(RATELIMIT_DEFAULT="3/minute").test_client()
    first = client.get("/api/v1/users/me")
    assert "X-RateLimit-Limit" not in first.headers  # RATELIMIT_HEADERS off: no window read per request
    client.get("/api/v1/users/me"), client.get("/api/v1/users/me")
    response = client.get("/api/v1/users/me")
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 61  # the window is a minute
    assert response.headers["RateLimit-Limit"] == "3" and response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) > time.time()
    assert response.get_json()["code"] == 429
    assert client.get("/health").status_code == 200  # probes are never limited


def test_rate_limit_headers_on_every_answer_when_asked_for(limited):
    client = limited(RATELIMIT_DEFAULT="3/minute", RATELIMIT_HEADERS=True).test_client()
    first = client.get("/api/v1/users/me")
    assert first.headers["X-RateLimit-Limit"] == "3" and first.headers["RateLimit-Limit"] == "3"
    assert first.headers["RateLimit-Remaining"] == "2"
    client.get("/api/v1/users/me"), client.get("/api/v1/users/me")
    response = client.get("/api/v1/users/me")
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_graphql_counts_against_the_same_budget_and_big_documents_cost_more(limited):
    client = limited(RATELIMIT_DEFAULT="10/minute").test_client()
    assert client.get("/api/v1/users/me").status_code == 401  # REST and GraphQL share the budget
    big = "{ posts(limit: 100) { id } }"  # 100 objects: costs 1 + 100 // 100 = 2
    statuses = [client.post("/graphql", json={"query": big}).status_code for _ in range(8)]
    assert statuses[:4] == [200] * 4 and statuses[-1] == 429
    assert statuses.index(429) <= 6  # at cost 1 all 8 would have passed
    response = client.post("/graphql", json={"query": big})
    assert response.status_code == 429
    body = response.get_json()
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED" and response.headers["Retry-After"]


def test_limits_survive_redis_being_down(limited):
    """Documented: with Redis unreachable, each process counts alone; the login limiter stays."""
    app = limited(redis_url="redis://127.0.0.1:1/0", RATELIMIT_LOGIN_FAILURES="2/minute")
    client = app.test_client()
    door = DOORS["rest"](client)
    assert client.get("/health").status_code == 200
    assert door.login("victim@example.com", "wrong password!").status == "unauthenticated"
    assert door.login("victim@example.com", "wrong password!").status == "unauthenticated"
    _assert_429(door.login("victim@example.com", PASSWORD))


def test_the_default_limit_still_refuses_with_redis_down(limited):
    """Redis unreachable: the per-request limit counts in this process instead, and still refuses."""
    client = limited(redis_url="redis://127.0.0.1:1/0", RATELIMIT_DEFAULT="3/minute").test_client()
    statuses = [client.get("/api/v1/users/me").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert int(client.get("/api/v1/users/me").headers["Retry-After"]) >= 1


@pytest.mark.services
def test_limits_are_shared_through_redis_by_every_app(limited, redis_url):
    first = limited(redis_url=redis_url, RATELIMIT_LOGIN_FAILURES="2/minute")
    second = limited(redis_url=redis_url, RATELIMIT_LOGIN_FAILURES="2/minute")
    assert DOORS["rest"](first.test_client()).login("victim@example.com", "nope nope").status == "unauthenticated"
    assert DOORS["rest"](second.test_client()).login("victim@example.com", "nope nope").status == "unauthenticated"
    _assert_429(DOORS["rest"](first.test_client()).login("victim@example.com", PASSWORD))


def test_common_passwords_are_refused(door):
    assert door.signup("Common", "common@example.com", "password123").status == "bad_input"
    assert door.signup("Common", "common@example.com", "iloveyou").status == "bad_input"


@pytest.mark.parametrize("door_name", sorted(DOORS))
def test_development_does_not_limit_loopback_per_ip_but_still_per_account(limited, door_name):
    app = limited(RATELIMIT_EXEMPT_LOOPBACK=True, RATELIMIT_SIGNUP_IP="1/minute", RATELIMIT_LOGIN_IP="1/minute",
                  RATELIMIT_LOGIN_FAILURES="2/minute", RATELIMIT_DEFAULT="2/minute")
    door = DOORS[door_name](app.test_client())  # the test client calls from 127.0.0.1
    assert door.signup("One", "one@example.com", PASSWORD).ok
    assert door.signup("Two", "two@example.com", PASSWORD).ok
    assert door.login("victim@example.com", "wrong password!").status == "unauthenticated"
    assert door.login("victim@example.com", "wrong password!").status == "unauthenticated"
    _assert_429(door.login("victim@example.com", PASSWORD))  # the account still locks


def test_production_never_exempts_loopback(monkeypatch):
    from conf.settings import load_config

    monkeypatch.setenv("SECRET_KEY", "s" * 64)
    monkeypatch.setenv("JWT_SECRET_KEY", "j" * 64)
    monkeypatch.setenv("RATELIMIT_EXEMPT_LOOPBACK", "true")
    assert load_config("production").RATELIMIT_EXEMPT_LOOPBACK is False
    monkeypatch.delenv("RATELIMIT_EXEMPT_LOOPBACK")
    assert load_config("development").RATELIMIT_EXEMPT_LOOPBACK is True


@pytest.mark.services
def test_the_default_limit_is_one_budget_across_apps_through_redis(limited, redis_url):
    first = limited(redis_url=redis_url, RATELIMIT_DEFAULT="3/minute").test_client()
    second = limited(redis_url=redis_url, RATELIMIT_DEFAULT="3/minute").test_client()
    statuses = [client.get("/api/v1/users/me").status_code for client in (first, second, first, second)]
    assert statuses == [401, 401, 401, 429]
    assert any(b"/delta:limit/" in key for key in Redis.from_url(redis_url).scan_iter())
