"""Typed settings read once from the environment (and an optional `.env`).

Every setting is a class attribute produced by `env(NAME, default, coerce)`, so the
README's table, the defaults and the coercion live side by side. `load_config()` picks
the class for `APP_ENV` and `ProductionConfig.check()` refuses unsafe values.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from dotenv import load_dotenv

from conf.oidc import to_oidc_providers, to_redirect_uris

ROOT = Path(__file__).resolve().parent.parent
load_dotenv(ROOT / ".env", override=False)

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev", "development"}
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """Raised when the environment holds a value the service must not run with."""


def to_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def to_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def to_networks(value: str) -> list[str]:
    """A comma list of addresses or CIDR networks (`10.0.0.0/8, ::1`); a typo fails at start-up."""
    from ipaddress import ip_network

    items = to_list(value)
    for item in items:
        ip_network(item, strict=False)  # ValueError names the bad entry
    return items


class env:
    """A setting read from the environment variable of its own name when the config is built."""

    def __init__(self, name: str, default, coerce=str):
        self.name, self.default, self.coerce = name, default, coerce

    def resolve(self):
        raw = os.environ.get(self.name)
        if raw is None:
            return self.default
        try:
            return self.coerce(raw)
        except ValueError as exc:
            raise ConfigError(f"{self.name}: {exc}") from None


def _dev_secret(instance_path: Path, name: str) -> str:
    """A random secret kept in instance/ so every local worker process signs alike."""
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / f".{name}"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class BaseConfig:
    ENV_NAME = "base"
    DEBUG = False
    TESTING = False

    INSTANCE_PATH = env("INSTANCE_PATH", str(ROOT / "instance"))
    SECRET_KEY = env("SECRET_KEY", "")
    JWT_SECRET_KEY = env("JWT_SECRET_KEY", "")

    DATABASE_URL = env("DATABASE_URL", "")
    DB_POOL_SIZE = env("DB_POOL_SIZE", 0, int)  # 0: size the pool to the threads per worker
    DB_POOL_TIMEOUT = env("DB_POOL_TIMEOUT", 10, int)
    DB_CONNECT_TIMEOUT = env("DB_CONNECT_TIMEOUT", 5, int)  # seconds to reach PostgreSQL, then 503
    GUNICORN_THREADS = env("GUNICORN_THREADS", 4, int)
    DB_ECHO = env("DB_ECHO", False, to_bool)
    # Read replicas (webapp/replicas): PostgreSQL streaming replicas that serve the reads; a replica
    # lagging more than REPLICA_MAX_LAG_SECONDS is skipped; each process polls them this often.
    DATABASE_REPLICA_URLS = env("DATABASE_REPLICA_URLS", [], to_list)
    REPLICA_MAX_LAG_SECONDS = env("REPLICA_MAX_LAG_SECONDS", 10.0, float)
    REPLICA_POLL_SECONDS = env("REPLICA_POLL_SECONDS", 0.25, float)

    REDIS_URL = env("REDIS_URL", "")

    # Celery: the broker is CELERY_BROKER_URL, else REDIS_URL; with neither, tasks run eagerly.
    CELERY_BROKER_URL = env("CELERY_BROKER_URL", "")
    CELERY_QUEUE_PREFIX = env("CELERY_QUEUE_PREFIX", "")  # tests give their worker its own queues
    EMAIL_TASK_TIME_LIMIT = env("EMAIL_TASK_TIME_LIMIT", 60, int)    # seconds, hard limit
    HEAVY_TASK_TIME_LIMIT = env("HEAVY_TASK_TIME_LIMIT", 3600, int)  # seconds, hard limit
    # Redis redelivers an unacknowledged task after this long: longer than the longest task.
    CELERY_VISIBILITY_TIMEOUT = env("CELERY_VISIBILITY_TIMEOUT", 3600 + 600, int)
    # The task outbox (webapp/outbox): beat's relay hands over what a commit could not, this often;
    # handed-over rows are kept this long (for inspection), then purged.
    OUTBOX_RELAY_SECONDS = env("OUTBOX_RELAY_SECONDS", 10.0, float)
    OUTBOX_KEEP_HOURS = env("OUTBOX_KEEP_HOURS", 24, int)
    # Realtime events (webapp/events): each topic keeps at least EVENTS_KEEP_SECONDS of events AND
    # its last EVENTS_KEEP_COUNT; a topic silent for EVENTS_TOPIC_IDLE_HOURS is dropped whole.
    # Trimmed at most every EVENTS_TRIM_SECONDS; with Redis, beat relays left-over rows this often.
    EVENTS_KEEP_SECONDS = env("EVENTS_KEEP_SECONDS", 3600, int)
    EVENTS_KEEP_COUNT = env("EVENTS_KEEP_COUNT", 10_000, int)
    EVENTS_TOPIC_IDLE_HOURS = env("EVENTS_TOPIC_IDLE_HOURS", 7 * 24, int)
    EVENTS_TRIM_SECONDS = env("EVENTS_TRIM_SECONDS", 60.0, float)
    EVENTS_RELAY_SECONDS = env("EVENTS_RELAY_SECONDS", 5.0, float)
    # The realtime process's one reader: the embedded default polls the table this often; a
    # subscriber further behind than EVENTS_SUBSCRIBER_QUEUE events is dropped (it can resume).
    EVENTS_POLL_SECONDS = env("EVENTS_POLL_SECONDS", 0.1, float)
    EVENTS_SUBSCRIBER_QUEUE = env("EVENTS_SUBSCRIBER_QUEUE", 1000, int)

    # Email: SMTP_URL (smtp://user:pass@host:587?starttls=1, smtps://...) else .eml files in OUTBOX_DIR.
    SMTP_URL = env("SMTP_URL", "")
    SMTP_TIMEOUT = env("SMTP_TIMEOUT", 10, int)
    MAIL_FROM = env("MAIL_FROM", "Delta <no-reply@localhost>")
    OUTBOX_DIR = env("OUTBOX_DIR", "")            # default: <instance>/outbox
    PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "http://127.0.0.1:8000")  # links in emails
    EMAIL_TOKEN_HOURS = env("EMAIL_TOKEN_HOURS", 24, int)
    RESET_TOKEN_HOURS = env("RESET_TOKEN_HOURS", 1, int)
    VERIFY_EMAILS_PER_HOUR = env("VERIFY_EMAILS_PER_HOUR", 5, int)

    # Jobs: result files, batch sizes, and how long finished jobs and their files are kept.
    JOB_RESULTS_DIR = env("JOB_RESULTS_DIR", "")  # default: <instance>/jobs
    JOB_RETENTION_DAYS = env("JOB_RETENTION_DAYS", 7, int)
    JOB_BATCH_SIZE = env("JOB_BATCH_SIZE", 1000, int)
    JOB_BATCH_DELAY = env("JOB_BATCH_DELAY", 0.0, float)  # test-only: slows jobs so one can be killed
    # A running job beats every JOB_STALL_SECONDS / 6; silent for JOB_STALL_SECONDS, it is queued again
    # (webapp/jobs/stalls.py), at most JOB_MAX_ATTEMPTS runs in all, then it fails.
    JOB_STALL_SECONDS = env("JOB_STALL_SECONDS", 120.0, float)
    JOB_MAX_ATTEMPTS = env("JOB_MAX_ATTEMPTS", 3, int)
    IMPORT_MAX_BYTES = env("IMPORT_MAX_BYTES", 20 * 1024 * 1024, int)

    ACCESS_TOKEN_MINUTES = env("ACCESS_TOKEN_MINUTES", 15, int)
    REFRESH_TOKEN_DAYS = env("REFRESH_TOKEN_DAYS", 14, int)
    # Two-factor sign-in (webapp/mfa): the issuer authenticator apps show beside the account, and
    # how long a login's mfa_token waits for its code (single use either way).
    MFA_ISSUER = env("MFA_ISSUER", "Delta")
    MFA_TOKEN_SECONDS = env("MFA_TOKEN_SECONDS", 300, int)
    # Personal access tokens: lifetime in days (asked for per token, 30 when not, never above the
    # maximum) and how many one user may hold (expired ones count until deleted).
    PAT_DEFAULT_DAYS = env("PAT_DEFAULT_DAYS", 30, int)
    PAT_MAX_DAYS = env("PAT_MAX_DAYS", 365, int)
    PAT_MAX_PER_USER = env("PAT_MAX_PER_USER", 50, int)
    # OWASP's minimum for argon2id: m=19 MiB, t=2, p=1.
    ARGON2_TIME_COST = env("ARGON2_TIME_COST", 2, int)
    ARGON2_MEMORY_KIB = env("ARGON2_MEMORY_KIB", 19 * 1024, int)
    ARGON2_PARALLELISM = env("ARGON2_PARALLELISM", 1, int)

    GRAPHQL_IDE = env("GRAPHQL_IDE", True, to_bool)
    GRAPHQL_MAX_DEPTH = env("GRAPHQL_MAX_DEPTH", 10, int)
    GRAPHQL_MAX_ALIASES = env("GRAPHQL_MAX_ALIASES", 30, int)
    GRAPHQL_MAX_TOKENS = env("GRAPHQL_MAX_TOKENS", 2000, int)
    # Objects a document could return (list limits multiplied through nesting); refused above.
    GRAPHQL_MAX_NODES = env("GRAPHQL_MAX_NODES", 10_000, int)
    DOCS_ENABLED = env("DOCS_ENABLED", True, to_bool)
    VENDOR_ASSETS_DIR = env("VENDOR_ASSETS_DIR", str(ROOT / "node_modules"))
    LOG_LEVEL = env("LOG_LEVEL", "INFO")
    CORS_ORIGINS = env("CORS_ORIGINS", [], to_list)
    # Single sign-on (webapp/oidc): the OpenID providers (JSON list; endpoints by discovery) and the
    # exact URIs a finished sign-in may send the browser back to (conf/oidc.py checks both).
    OIDC_PROVIDERS = env("OIDC_PROVIDERS", [], to_oidc_providers)
    OIDC_REDIRECT_URIS = env("OIDC_REDIRECT_URIS", [], to_redirect_uris)
    DOCS_USERNAME = env("DOCS_USERNAME", "")
    DOCS_PASSWORD = env("DOCS_PASSWORD", "")
    HSTS = env("HSTS", False, to_bool)
    TRUSTED_PROXIES = env("TRUSTED_PROXIES", 0, int)
    # Production only: /metrics answers callers in METRICS_ALLOW or sending `Bearer <METRICS_TOKEN>`;
    # others get 404. Elsewhere /metrics is open.
    METRICS_ALLOW = env("METRICS_ALLOW", ["127.0.0.1", "::1"], to_networks)
    METRICS_TOKEN = env("METRICS_TOKEN", "")
    RATELIMIT_ENABLED = env("RATELIMIT_ENABLED", True, to_bool)
    RATELIMIT_DEFAULT = env("RATELIMIT_DEFAULT", "600/minute")
    # X-RateLimit-*/RateLimit-* on every answer costs two more storage round trips per request;
    # refusals (429) carry them and Retry-After either way.
    RATELIMIT_HEADERS = env("RATELIMIT_HEADERS", False, to_bool)
    RATELIMIT_EXEMPT_LOOPBACK = env("RATELIMIT_EXEMPT_LOOPBACK", False, to_bool)
    RATELIMIT_LOGIN_IP = env("RATELIMIT_LOGIN_IP", "20/minute")
    RATELIMIT_LOGIN_EMAIL = env("RATELIMIT_LOGIN_EMAIL", "10/minute")
    RATELIMIT_LOGIN_FAILURES = env("RATELIMIT_LOGIN_FAILURES", "10/15 minutes")
    RATELIMIT_SIGNUP_IP = env("RATELIMIT_SIGNUP_IP", "20/hour")
    RATELIMIT_PASSWORD_RESET_IP = env("RATELIMIT_PASSWORD_RESET_IP", "10/hour")
    RATELIMIT_MFA = env("RATELIMIT_MFA", "5/15 minutes")  # wrong two-factor codes per account

    # Media (avatars): a local folder by default, served at MEDIA_URL; see webapp/media/storage.py.
    MEDIA_ROOT = env("MEDIA_ROOT", "")  # empty: <INSTANCE_PATH>/media
    MEDIA_URL = env("MEDIA_URL", "/media/")
    MAX_AVATAR_BYTES = env("MAX_AVATAR_BYTES", 5 * 1024 * 1024, int)
    # Refused before decoding: far below Pillow's ~89 Mpx decompression-bomb default.
    AVATAR_MAX_PIXELS = env("AVATAR_MAX_PIXELS", 25_000_000, int)
    # Whole request bodies above this are cut off by werkzeug with a 413 (the avatar limit + form overhead).
    MAX_CONTENT_LENGTH = env("MAX_CONTENT_LENGTH", 6 * 1024 * 1024, int)
    IDEMPOTENCY_TTL_HOURS = env("IDEMPOTENCY_TTL_HOURS", 24, int)
    # How long a POST waits for a concurrent request with the same Idempotency-Key to commit (then 409).
    IDEMPOTENCY_WAIT_SECONDS = env("IDEMPOTENCY_WAIT_SECONDS", 5.0, float)

    # The realtime process (webapp/realtime: WebSocket subscriptions and SSE, `make realtime`).
    REALTIME_PORT = env("REALTIME_PORT", 8001, int)
    REALTIME_PUBLIC_URL = env("REALTIME_PUBLIC_URL", "")  # empty: http://<host of the request>:REALTIME_PORT
    REALTIME_MAX_CONNECTIONS_PER_USER = env("REALTIME_MAX_CONNECTIONS_PER_USER", 20, int)  # per IP when anonymous
    REALTIME_MAX_SUBSCRIPTIONS = env("REALTIME_MAX_SUBSCRIPTIONS", 50, int)  # per WebSocket
    REALTIME_IDLE_SECONDS = env("REALTIME_IDLE_SECONDS", 300.0, float)  # a WebSocket with no subscription
    REALTIME_HEARTBEAT_SECONDS = env("REALTIME_HEARTBEAT_SECONDS", 15.0, float)  # SSE comment, WS ping

    def __init__(self):
        for key in dir(type(self)):
            value = getattr(type(self), key)
            if isinstance(value, env):
                setattr(self, key, value.resolve())
        self.INSTANCE_PATH = Path(self.INSTANCE_PATH)
        self.VENDOR_ASSETS_DIR = Path(self.VENDOR_ASSETS_DIR)
        self.MEDIA_ROOT = Path(self.MEDIA_ROOT) if self.MEDIA_ROOT else self.INSTANCE_PATH / "media"
        if not self.DATABASE_URL:
            self.DATABASE_URL = f"sqlite:///{self.INSTANCE_PATH / 'delta.db'}"
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            if not getattr(self, name):
                setattr(self, name, self._missing_secret(name))

    def _missing_secret(self, name: str) -> str:
        return _dev_secret(self.INSTANCE_PATH, name.lower())

    def check(self) -> None:
        """Refuse values this environment must not run with."""

    def as_flask(self) -> dict:
        return {key: getattr(self, key) for key in dir(self) if key.isupper()}

    def override(self, **values) -> "BaseConfig":
        """Return self with `values` set: how tests and tools adjust one setting."""
        for key, value in values.items():
            setattr(self, key, value)
        return self


class DevelopmentConfig(BaseConfig):
    ENV_NAME = "development"
    RATELIMIT_EXEMPT_LOOPBACK = env("RATELIMIT_EXEMPT_LOOPBACK", True, to_bool)


class TestingConfig(BaseConfig):
    ENV_NAME = "testing"
    TESTING = True
    # Cheap hashes keep the suite fast; production's parameters are tested separately.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_KIB = 1024
    # The suite signs in hundreds of times from one address; the limits' own tests set low ones.
    RATELIMIT_DEFAULT = RATELIMIT_LOGIN_IP = RATELIMIT_LOGIN_EMAIL = "100000/minute"
    RATELIMIT_LOGIN_FAILURES = RATELIMIT_SIGNUP_IP = "100000/minute"
    RATELIMIT_PASSWORD_RESET_IP = RATELIMIT_MFA = "100000/minute"

    DATABASE_URL = env("TEST_DATABASE_URL", "")


class ProductionConfig(BaseConfig):
    ENV_NAME = "production"
    RATELIMIT_EXEMPT_LOOPBACK = False  # never, whatever the environment says
    GRAPHQL_IDE = env("GRAPHQL_IDE", False, to_bool)
    DOCS_ENABLED = env("DOCS_ENABLED", False, to_bool)
    HSTS = env("HSTS", True, to_bool)

    def __init__(self):
        super().__init__()
        if self.DOCS_USERNAME and self.DOCS_PASSWORD:  # docs and GraphiQL behind basic auth
            self.DOCS_ENABLED = self.GRAPHQL_IDE = True

    def _missing_secret(self, name: str) -> str:
        return ""  # never invent secrets in production: an empty one fails check()

    def check(self) -> None:
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            value = getattr(self, name)
            if value.lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    f"{name} must be set to a random value of at least {MIN_SECRET_LENGTH} "
                    f"characters in production (e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(name: str | None = None) -> BaseConfig:
    """Build the settings for `name` (default: `APP_ENV`, else development) and check them."""
    name = name or os.environ.get("APP_ENV", "development")
    try:
        config = CONFIGS[name]()
    except KeyError:
        raise ConfigError(f"APP_ENV must be one of {', '.join(CONFIGS)}, not {name!r}") from None
    config.check()
    return config
