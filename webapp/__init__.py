"""Delta's application factory: config → extensions → REST → GraphQL → the small routes."""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from flask import Flask

from conf import BaseConfig, load_config
from webapp.jsonio import BoundedRequest, StrictJSONProvider

API_TITLE = "Delta"
API_VERSION = "v1"


class Delta(Flask):
    """Flask, asking once per hook or view whether it is a coroutine function.

    Flask passes every hook and the view through `ensure_sync` on each request, and the stock
    one inspects the function every time: 18 calls per `/users/me` here, 1.4 % of its
    instructions (`make bench-instructions`). Hooks and views are fixed after start-up, so the
    answer is kept (for the last 1024 callables asked about).
    """

    json_provider_class = StrictJSONProvider  # request bodies parsed strictly (webapp/jsonio.py)
    request_class = BoundedRequest  # a chunked body past MAX_CONTENT_LENGTH is a 413, never cut short

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ensure_sync_cached = lru_cache(maxsize=1024)(super().ensure_sync)

    def ensure_sync(self, func):
        try:
            return self._ensure_sync_cached(func)
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)

    def make_default_options_response(self):
        """OPTIONS: 204 with `Allow` and no body (Flask's is a 200 with an empty text/html body)."""
        response = super().make_default_options_response()
        response.status_code = 204
        del response.headers["Content-Type"]
        return response


def create_app(config: BaseConfig | Mapping | None = None) -> Flask:
    """Build the app. `config`: a settings object, or overrides applied to APP_ENV's settings."""
    if config is None or isinstance(config, Mapping):
        overrides = dict(config or {})
        config = load_config(overrides.pop("APP_ENV", None)).override(**overrides)
    app = Delta(__name__, instance_path=str(config.INSTANCE_PATH), static_folder=None)
    app.config.from_mapping(config.as_flask())
    app.config.update(_library_settings(app.config))
    app.json.sort_keys = False
    from webapp import observability, security

    observability.configure_logging(app.config["LOG_LEVEL"])

    from webapp.auth import tokens  # noqa: F401  (registers the JWT loaders)
    from webapp.auth.passwords import passwords
    from webapp.extensions import cache, db, jwt
    from webapp.rest.api import api

    db.init_app(app)
    from webapp import replicas

    replicas.init_app(app)  # read replicas, when DATABASE_REPLICA_URLS names some
    passwords.init_app(app)
    jwt.init_app(app)
    cache.init_app(app)
    from webapp import caching

    caching.init_app(app)
    api.init_app(app, spec_kwargs=_spec_kwargs())

    from webapp.celery_app import celery_init_app

    celery_init_app(app)

    from webapp.rest import register_blueprints
    from webapp.graphql import register_graphql
    from webapp import cli, idempotency, proxy, ratelimit, site
    from webapp.media import storage

    register_blueprints(api)
    register_graphql(app)
    site.init_app(app)
    storage.init_app(app)
    idempotency.init_app(app)
    observability.init_app(app)
    security.init_app(app)
    proxy.init_app(app)
    ratelimit.init_app(app)
    from webapp.rest.api import install_input_guards

    install_input_guards(app)  # after the limiter's hook: refused input still counts against the caller
    cli.init_app(app)
    # Map every model now, not on a worker's first ORM query: the principal is built without a
    # query (webapp/auth/tokens.py) and may be the first model a fresh worker touches.
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    return app


def _library_settings(config) -> dict:
    """Translate Delta's settings into the names flask-smorest, JWT, cache and limiter read."""
    from datetime import timedelta

    from webapp import caching

    docs = config["DOCS_ENABLED"]
    return {
        "API_TITLE": API_TITLE,
        "API_VERSION": API_VERSION,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/" if docs else None,
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/vendor/swagger-ui-dist/",
        "OPENAPI_SWAGGER_UI_CONFIG": {"persistAuthorization": True, "deepLinking": True},
        "OPENAPI_REDOC_PATH": "redoc",
        "OPENAPI_REDOC_URL": "/vendor/redoc/bundles/redoc.standalone.js",
        "API_SPEC_OPTIONS": {
            "info": {"description": "Users, profiles, posts and jobs. Errors: "
                                    "`{code, status, message, errors?}`.",
                     "contact": {"name": "The Delta team"}, "license": {"name": "Proprietary"}},
            # Relative: the host that serves this document, whatever name a proxy gives it.
            "servers": [{"url": "/", "description": "This server (the origin serving /openapi.json)."}],
        },
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=config["ACCESS_TOKEN_MINUTES"]),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=config["REFRESH_TOKEN_DAYS"]),
        "JWT_ALGORITHM": "HS256",
        "JWT_DECODE_ALGORITHMS": ["HS256"],
        "JWT_TOKEN_LOCATION": ["headers"],
        "JWT_ERROR_MESSAGE_KEY": "message",
        "PROPAGATE_EXCEPTIONS": False,
        **caching.settings(config),
        "CACHE_DEFAULT_TIMEOUT": 300,
        "CACHE_KEY_PREFIX": "delta:cache:",
    }


def _spec_kwargs() -> dict:
    from webapp.idempotency import OpenAPIPlugin

    return {
        "extra_plugins": [OpenAPIPlugin()],  # the Idempotency-Key header on every POST
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                               "description": "The access_token from POST /api/v1/auth/login."},
            }
        }
    }
