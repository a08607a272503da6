"""Configuration: `load_config()` returns the checked settings for APP_ENV."""
from conf.settings import BaseConfig, ConfigError, load_config

__all__ = ["BaseConfig", "ConfigError", "load_config"]
