"""What every client sees regardless of resource: the error shape, docs, health, limits of input."""
from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

ERROR_KEYS = {"code", "status", "message"}


def assert_error(response, code):
    assert response.status_code == code, response.get_data(as_text=True)
    body = response.get_json()
    assert ERROR_KEYS <= set(body) and body["code"] == code and isinstance(body["message"], str)
    return body


def test_unknown_path_is_a_json_404(client):
    assert_error(client.get("/api/v1/nowhere"), 404)


def test_wrong_method_is_a_json_405(client):
    body = assert_error(client.delete("/api/v1/users"), 405)
    assert body["status"] == "Method Not Allowed"


def test_malformed_json_is_a_json_400(client):
    body = assert_error(client.post("/api/v1/users", data="{nope", content_type="application/json"), 400)
    assert "JSON" in body["message"]


def test_unknown_fields_are_rejected(client):
    body = assert_error(client.post("/api/v1/users", json={"name": "A", "email": "a@example.com",
                                                            "password": PASSWORD, "role": "admin"}), 422)
    assert "role" in body["errors"]


def test_wrong_types_are_422(client):
    assert_error(client.post("/api/v1/users", json={"name": 5, "email": [], "password": None}), 422)


def test_nul_characters_are_422_not_500(client, make_user, token):
    assert_error(client.post("/api/v1/users", json={"name": "Nul\x00", "email": "n@example.com",
                                                     "password": PASSWORD}), 422)
    user = make_user()
    headers = {"Authorization": f"Bearer {token(user)}"}
    assert_error(client.get("/api/v1/users", query_string={"q": "a\x00b"}, headers=headers), 422)
    assert_error(client.post("/api/v1/auth/login", json={"email": "a\x00@example.com", "password": PASSWORD}), 401)


@pytest.mark.parametrize("path", ["/api/v1/users/99999999999999999999999", "/api/v1/users/9223372036854775808"])
def test_ids_past_64_bits_are_not_found(client, make_user, token, path):
    headers = {"Authorization": f"Bearer {token(make_user())}"}
    assert_error(client.get(path, headers=headers), 404)


def test_page_past_64_bits_is_422(client, make_user, token):
    headers = {"Authorization": f"Bearer {token(make_user())}"}
    assert_error(client.get("/api/v1/users?page=99999999999999999999", headers=headers), 422)
    assert_error(client.get("/api/v1/users?page=0", headers=headers), 422)


def test_graphql_errors_carry_codes(client, make_user, token):
    body = client.post("/graphql", json={"query": "{ nosuchfield }"}).get_json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = client.post("/graphql", json={"query": "{ user(id: 424242) { id } }"},
                       headers={"Authorization": f"Bearer {token(make_user())}"}).get_json()
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_graphql_nul_and_huge_ints_are_bad_input(client, make_user, token):
    body = client.post("/graphql", json={"query": 'mutation { createUser(input: {name: "a\\u0000", email: "z@example.com", password: "long enough pw"}) { id } }'}).get_json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = client.post("/graphql", json={"query": "{ user(id: 99999999999999999999) { id } }"},
                       headers={"Authorization": f"Bearer {token(make_user())}"}).get_json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_openapi_marks_protected_operations_with_bearer(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    paths = spec["paths"]
    assert paths["/api/v1/users/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/v1/auth/login"]["post"]["security"] == []  # public: said so (PRODUCT.md)
    assert paths["/api/v1/users"]["post"]["security"] == []
    assert paths["/api/v1/users"]["get"]["security"] == [{"bearerAuth": []}]


@pytest.mark.parametrize("page,asset", [("/docs", "/vendor/swagger-ui-dist/swagger-ui-bundle.js"),
                                        ("/redoc", "/vendor/redoc/bundles/redoc.standalone.js")])
def test_docs_pages_use_local_assets(client, page, asset):
    html = client.get(page).get_data(as_text=True)
    assert asset in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower() and "googleapis" not in html.lower()


def test_graphiql_uses_local_assets(client):
    response = client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "/vendor/graphiql/graphiql.min.js" in html and "unpkg" not in html


def test_vendor_route_only_serves_whitelisted_packages(client):
    assert client.get("/vendor/lodash/index.js").status_code == 404
    assert client.get("/vendor/react/package.json").status_code == 404
    assert client.get("/vendor/react/umd/../package.json").status_code == 404


def test_health_needs_nothing(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_ready_checks_the_database_and_migrations(client):
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "migrations": "ok"}


def test_ready_is_503_when_migrations_are_behind(app, client):
    from sqlalchemy import text

    from webapp.extensions import db

    with app.app_context():
        with db.engine.begin() as connection:
            current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        try:
            response = client.get("/ready")
            assert response.status_code == 503
            assert response.get_json()["checks"]["migrations"].startswith("error")
        finally:
            with db.engine.begin() as connection:
                connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})


def test_ready_is_503_when_redis_is_down(tmp_path):
    from conf.settings import TestingConfig as Settings
    from webapp import create_app
    from webapp.cli import upgrade

    config = Settings().override(INSTANCE_PATH=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'r.db'}",
                                 REDIS_URL="redis://127.0.0.1:1/0")
    app = create_app(config)
    with app.app_context():
        upgrade()
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"] == "ok" and checks["redis"].startswith("error") and checks["broker"].startswith("error")
    assert app.test_client().get("/health").status_code == 200


def test_production_refuses_default_or_short_secrets(monkeypatch):
    from conf.settings import ConfigError, load_config

    monkeypatch.setenv("SECRET_KEY", "change-me")
    monkeypatch.setenv("JWT_SECRET_KEY", "x" * 64)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config("production")
    monkeypatch.setenv("SECRET_KEY", "x" * 64)
    monkeypatch.setenv("JWT_SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY"):
        load_config("production")
    monkeypatch.delenv("JWT_SECRET_KEY")
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY"):
        load_config("production")
    monkeypatch.setenv("JWT_SECRET_KEY", "y" * 64)
    assert load_config("production").DOCS_ENABLED is False


def test_bad_setting_names_the_variable(monkeypatch):
    from conf.settings import ConfigError, load_config

    monkeypatch.setenv("ACCESS_TOKEN_MINUTES", "soon")
    with pytest.raises(ConfigError, match="ACCESS_TOKEN_MINUTES"):
        load_config("testing")


def test_a_row_changed_or_deleted_meanwhile_is_409_not_500(client, make_user, token, monkeypatch):
    from sqlalchemy.orm.exc import StaleDataError

    from webapp.profiles import services as profiles

    def raced(*args, **kwargs):
        raise StaleDataError("UPDATE statement on table 'profiles' expected to update 1 row(s); 0 were matched.")

    monkeypatch.setattr(profiles, "update_profile", raced)
    user = make_user()
    headers = {"Authorization": f"Bearer {token(user)}"}
    body = assert_error(client.patch(f"/api/v1/users/{user.id}/profile", json={"bio": "x"}, headers=headers), 409)
    assert "UPDATE" not in body["message"]
    graphql = client.post("/graphql", headers=headers, json={
        "query": f'mutation {{ updateProfile(userId: {user.id}, input: {{bio: "x"}}) {{ bio }} }}'}).get_json()
    assert graphql["errors"][0]["extensions"]["code"] == "CONFLICT" and "UPDATE" not in graphql["errors"][0]["message"]
