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
    GUNICORN_THREADS = env("GUNICORN_THREADS", 4, int)
    DB_ECHO = env("DB_ECHO", False, to_bool)

    REDIS_URL = env("REDIS_URL", "")

    ACCESS_TOKEN_MINUTES = env("ACCESS_TOKEN_MINUTES", 15, int)
    REFRESH_TOKEN_DAYS = env("REFRESH_TOKEN_DAYS", 14, int)
    # OWASP's minimum for argon2id: m=19 MiB, t=2, p=1.
    ARGON2_TIME_COST = env("ARGON2_TIME_COST", 2, int)
    ARGON2_MEMORY_KIB = env("ARGON2_MEMORY_KIB", 19 * 1024, int)
    ARGON2_PARALLELISM = env("ARGON2_PARALLELISM", 1, int)

    MAX_PAGE_SIZE = 100
    GRAPHQL_IDE = env("GRAPHQL_IDE", True, to_bool)
    DOCS_ENABLED = env("DOCS_ENABLED", True, to_bool)
    VENDOR_ASSETS_DIR = env("VENDOR_ASSETS_DIR", str(ROOT / "node_modules"))
    LOG_LEVEL = env("LOG_LEVEL", "INFO")

    # Media (avatars): a local folder by default, served at MEDIA_URL; see webapp/media/storage.py.
    MEDIA_ROOT = env("MEDIA_ROOT", "")  # empty: <INSTANCE_PATH>/media
    MEDIA_URL = env("MEDIA_URL", "/media/")
    MAX_AVATAR_BYTES = env("MAX_AVATAR_BYTES", 5 * 1024 * 1024, int)
    # Refused before decoding: far below Pillow's ~89 Mpx decompression-bomb default.
    AVATAR_MAX_PIXELS = env("AVATAR_MAX_PIXELS", 25_000_000, int)
    # Whole request bodies above this are cut off by werkzeug with a 413 (the avatar limit + form overhead).
    MAX_CONTENT_LENGTH = env("MAX_CONTENT_LENGTH", 6 * 1024 * 1024, int)
    IDEMPOTENCY_TTL_HOURS = env("IDEMPOTENCY_TTL_HOURS", 24, int)

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


class TestingConfig(BaseConfig):
    ENV_NAME = "testing"
    TESTING = True
    # Cheap hashes keep the suite fast; production's parameters are tested separately.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_KIB = 1024

    DATABASE_URL = env("TEST_DATABASE_URL", "")


class ProductionConfig(BaseConfig):
    ENV_NAME = "production"
    GRAPHQL_IDE = env("GRAPHQL_IDE", False, to_bool)
    DOCS_ENABLED = env("DOCS_ENABLED", False, to_bool)

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
