"""Security headers, request ids, JSON request logs, metrics, CORS and docs behind basic auth."""
from __future__ import annotations

import base64
import json
import logging

import pytest

from conf.settings import TestingConfig as Settings
from webapp import create_app


@pytest.mark.parametrize("path", ["/health", "/api/v1/users/me", "/api/v1/nowhere", "/docs", "/openapi.json"])
def test_every_response_has_the_security_headers(client, path):
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_pages_allow_only_local_scripts(client):
    csp = client.get("/docs").headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-eval" not in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]


def test_private_answers_are_not_stored(client, make_user, token):
    response = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token(make_user())}"})
    assert response.headers["Cache-Control"] == "no-store"


def test_no_cookies_are_ever_set(client, make_user, token):
    """Stateless API: no Flask session cookie, signed in or not, and nothing can start one."""
    user = make_user()
    answers = [client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token(user)}"}),
               client.get("/health"), client.get("/docs"),
               client.post("/graphql", json={"query": "{ __typename }"})]
    assert [a.headers.get("Set-Cookie") for a in answers] == [None] * len(answers)
    from flask import session

    with client.application.test_request_context("/"), pytest.raises(RuntimeError):
        session["x"] = 1  # a NullSession: writing to it is a loud error, never a cookie


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32
    hostile = client.get("/health", headers={"X-Request-ID": "x" * 500}).headers["X-Request-ID"]
    assert hostile != "x" * 500


def test_one_json_log_line_per_request(client, make_user, token, caplog):
    user = make_user()
    access = token(user)
    with caplog.at_level(logging.INFO, logger="webapp.request"):
        client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {access}", "X-Request-ID": "req-1"})
    records = [r for r in caplog.records if r.name == "webapp.request" and r.fields["path"] == "/api/v1/users/me"]
    assert len(records) == 1
    from webapp.observability import JsonFormatter

    line = json.loads(JsonFormatter().format(records[0]))
    assert line["method"] == "GET" and line["path"] == "/api/v1/users/me" and line["status"] == 200
    assert line["user_id"] == user.id and line["request_id"] == "req-1" and line["duration_ms"] >= 0


def test_metrics_count_requests_by_endpoint(client):
    client.get("/health")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'delta_http_requests_total{endpoint="/health",method="GET",status="200"}' in text
    assert "delta_http_request_duration_seconds_bucket" in text


def _app(tmp_path, **overrides):
    config = Settings().override(INSTANCE_PATH=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
                                      **overrides)
    return create_app(config)


def test_docs_behind_basic_auth_when_configured(tmp_path):
    client = _app(tmp_path, DOCS_USERNAME="docs", DOCS_PASSWORD="s3cret-docs").test_client()
    for path in ("/docs", "/redoc", "/openapi.json"):
        response = client.get(path)
        assert response.status_code == 401 and "Basic" in response.headers["WWW-Authenticate"]
    good = base64.b64encode(b"docs:s3cret-docs").decode()
    bad = base64.b64encode(b"docs:wrong").decode()
    assert client.get("/docs", headers={"Authorization": f"Basic {bad}"}).status_code == 401
    assert client.get("/docs", headers={"Authorization": f"Basic {good}"}).status_code == 200
    assert client.get("/graphql", headers={"Accept": "text/html"}).status_code == 401
    assert client.get("/health").status_code == 200


def test_docs_and_graphiql_off_when_disabled(tmp_path):
    client = _app(tmp_path, DOCS_ENABLED=False, GRAPHQL_IDE=False).test_client()
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 404
    response = client.get("/graphql", headers={"Accept": "text/html"})
    assert b"graphiql" not in response.data.lower()


def test_cors_allows_only_configured_origins(tmp_path):
    client = _app(tmp_path, CORS_ORIGINS=["https://app.example.com"]).test_client()
    allowed = client.options("/api/v1/users/me", headers={"Origin": "https://app.example.com",
                                                         "Access-Control-Request-Method": "GET"})
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://app.example.com"
    denied = client.get("/health", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in denied.headers


def test_hsts_in_production_settings(monkeypatch):
    from conf.settings import load_config

    monkeypatch.setenv("SECRET_KEY", "s" * 64)
    monkeypatch.setenv("JWT_SECRET_KEY", "j" * 64)
    config = load_config("production")
    assert config.HSTS is True and config.DOCS_ENABLED is False and config.GRAPHQL_IDE is False
    monkeypatch.setenv("DOCS_USERNAME", "docs")
    monkeypatch.setenv("DOCS_PASSWORD", "pw-for-docs")
    assert load_config("production").DOCS_ENABLED is True
