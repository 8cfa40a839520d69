"""Service settings: one frozen object from the environment, secrets from files, fail fast."""

from libs.config.secret import parse_key_set, read_secret
from libs.config.settings import LogLevel, Port, SecretFileError, ServiceSettings, env_name, load_settings

__all__ = [
    "LogLevel",
    "Port",
    "SecretFileError",
    "ServiceSettings",
    "env_name",
    "load_settings",
    "parse_key_set",
    "read_secret",
]
