"""The frozen settings object every service loads once at start, and the fail-fast loader."""

from __future__ import annotations

import os
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from libs.config.secret import parse_key_set

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

#: A TCP port; 0 asks the OS for a free one (tests). Subclasses use it so overriding a default keeps the
#: range check (`grpc_port: Port = 50051`).
Port = Annotated[int, Field(ge=0, le=65535)]

_S = TypeVar("_S", bound="ServiceSettings")


class SecretFileError(ValueError):
    """A `<NAME>_FILE` variable is unusable; the message names the variable and never the content."""


def env_name(field_name: str) -> str:
    """Return the environment variable that sets a settings field (no prefix, upper case)."""
    return field_name.upper()


def _mentions_secret(annotation: Any) -> bool:
    """Tell whether a field annotation is SecretStr or an optional/union containing it."""
    if annotation is SecretStr:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_mentions_secret(arg) for arg in typing.get_args(annotation))
    return False


def file_capable_fields(settings_cls: type[BaseSettings]) -> list[str]:
    """Names of the fields that may be given as `<NAME>_FILE`: every secret plus `FILE_FIELDS`."""
    extra: frozenset[str] = getattr(settings_cls, "FILE_FIELDS", frozenset())
    return [
        name
        for name, info in settings_cls.model_fields.items()
        if name in extra or _mentions_secret(info.annotation)
    ]


def _read_file(path: str, variable: str) -> str:
    try:
        # Secret files from Kubernetes and editors often end with a newline that is not part of the value.
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        reason = f"{variable} points at {path!r}, which cannot be read ({exc.strerror})"
        raise SecretFileError(reason) from None


class _FileSource(PydanticBaseSettingsSource):
    """Reads `<NAME>_FILE` for file-capable fields, below plain environment variables in priority."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ does the whole job, as pydantic-settings allows.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in file_capable_fields(self.settings_cls):
            variable = env_name(name)
            path = os.environ.get(f"{variable}_FILE")
            if path is None:
                continue
            if os.environ.get(variable) is not None:
                # Two sources for one secret is how a rotated file silently stops being used.
                raise SecretFileError(f"{variable} and {variable}_FILE are both set; set only one")
            values[name] = _read_file(path, f"{variable}_FILE")
        return values


class ServiceSettings(BaseSettings):
    """Settings every service shares, read from the environment; services subclass it to add their own.

    The object is frozen: a service builds it once in `__main__` through `load_settings` and passes it
    down. Field `grpc_port` is set by `GRPC_PORT`, and so on (no prefix). Secret fields are `SecretStr`
    (masked in repr and logs) and may be given as `<NAME>_FILE`; `read_secret` re-reads such a file on
    every call so a rotated Kubernetes secret takes effect without a restart.

    Attributes:
        service_name: Name used in compose, k8s, metrics and traces (`orders`, `shopify-adapter`).
        grpc_host: Address the gRPC server binds; `0.0.0.0` in containers.
        grpc_port: gRPC port; 0 picks a free port (tests).
        metrics_host: Address the Prometheus endpoint binds.
        metrics_port: Prometheus port; 0 picks a free port (tests).
        http_port: Port of the service's HTTP listener, for the services that have one.
        nats_url: NATS server URL (several comma-separated for a cluster).
        nats_stream_replicas: Replicas of the streams a service provisions: 1 embedded, 3 in production.
        nats_provision: Which streams a service creates or updates at start: `all` it uses (embedded
            default), `own` (production users may change only their own), or `none`.
        data_dir: Folder for embedded state (SQLite files, JetStream store).
        database_url: SQLAlchemy URL; defaults to `sqlite+aiosqlite:///<data_dir>/<service_name>.db`.
        log_level: Root log level.
        otel_service_name: Standard OpenTelemetry override of the service name in traces.
        otel_exporter_otlp_endpoint: OTLP gRPC endpoint (Jaeger); traces are exported only when set.
        shutdown_grace_s: Seconds in-flight RPCs get to finish on shutdown.
        grpc_max_message_bytes: Largest gRPC message received or sent.
        grpc_max_concurrent_rpcs: Concurrent RPCs a server accepts before answering RESOURCE_EXHAUSTED.
        grpc_client_timeout_s: Deadline given to outgoing calls that do not set one.
        mesh_auth_keys: JSON object `{kid: key}` of keys that verify incoming service tokens: an
            HS256 shared secret, or an Ed25519 public key in PEM. Unset: authentication is off (dev).
        mesh_auth_issuer: Expected `iss` of service tokens.
        mesh_auth_audience: Expected `aud` of incoming tokens; defaults to the service name.
        mesh_auth_token: Bearer token this service sends on outgoing calls (usually `_FILE`, rotated).
        mesh_auth_signing_key: Key to mint outgoing tokens itself (HS256 secret or Ed25519 private PEM).
        mesh_auth_signing_kid: `kid` header of minted tokens.
        mesh_auth_client_scopes: Space-separated scopes this service puts in tokens it mints.
        tls_cert: Server/client certificate chain (PEM); with `tls_key`, turns TLS on.
        tls_key: Private key (PEM) of `tls_cert`.
        tls_ca: CA bundle (PEM); on a server it also requires client certificates (mTLS).
        tls_server_name: Name to verify in the peer's certificate when it differs from the target host.
        redaction_key: Key of the hash that makes redacted emails and phones comparable across logs.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False, env_prefix="")

    # Non-secret fields that may still come from a file (certificates are mounted like secrets).
    FILE_FIELDS: ClassVar[frozenset[str]] = frozenset({"tls_cert", "tls_ca"})

    service_name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9-]*$")
    grpc_host: str = "127.0.0.1"
    grpc_port: Port
    metrics_host: str = "127.0.0.1"
    metrics_port: Port
    http_port: Port | None = None
    nats_url: str = "nats://127.0.0.1:4222"
    nats_stream_replicas: int = Field(1, ge=1, le=5)
    nats_provision: Literal["all", "own", "none"] = "all"
    data_dir: Path = Path(".mesh")
    database_url: str = ""
    log_level: LogLevel = "INFO"
    otel_service_name: str | None = None
    otel_exporter_otlp_endpoint: str | None = None
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    grpc_max_message_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    grpc_max_concurrent_rpcs: int | None = Field(default=512, gt=0)
    grpc_client_timeout_s: float = Field(default=5.0, gt=0)
    mesh_auth_keys: SecretStr | None = None
    mesh_auth_issuer: str = "retail-mesh"
    mesh_auth_audience: str | None = None
    mesh_auth_token: SecretStr | None = None
    mesh_auth_signing_key: SecretStr | None = None
    mesh_auth_signing_kid: str | None = None
    mesh_auth_client_scopes: str = ""
    tls_cert: str | None = None
    tls_key: SecretStr | None = None
    tls_ca: str | None = None
    tls_server_name: str | None = None
    redaction_key: SecretStr | None = None

    # field name -> file path, for secrets given as <NAME>_FILE; read_secret re-reads these.
    _secret_files: dict[str, str] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Use init arguments, then environment variables, then `<NAME>_FILE`; no dotenv files."""
        return (init_settings, env_settings, _FileSource(settings_cls))

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("mesh_auth_keys")
    @classmethod
    def _keys_are_a_json_object(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_key_set(value.get_secret_value())
        return value

    @model_validator(mode="before")
    @classmethod
    def _derive_database_url(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("database_url"):
            return data
        # A subclass's default service name counts as much as SERVICE_NAME from the environment.
        service = data.get("service_name") or cls.model_fields["service_name"].get_default()
        if not service:
            return data  # the missing SERVICE_NAME is reported by field validation
        data_dir = data.get("data_dir") or cls.model_fields["data_dir"].get_default()
        return {**data, "database_url": f"sqlite+aiosqlite:///{data_dir}/{service}.db"}

    @model_validator(mode="after")
    def _tls_needs_cert_and_key(self) -> ServiceSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS_CERT and TLS_KEY must be set together")
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Remember which file-capable fields came from `<NAME>_FILE`, for `read_secret`."""
        for name in file_capable_fields(type(self)):
            variable = env_name(name)
            path = os.environ.get(f"{variable}_FILE")
            if path is not None and os.environ.get(variable) is None and getattr(self, name) is not None:
                self._secret_files[name] = path

    @property
    def trace_service_name(self) -> str:
        """The name traces carry: `OTEL_SERVICE_NAME` when set, else `SERVICE_NAME`."""
        return self.otel_service_name or self.service_name

    @property
    def auth_audience(self) -> str:
        """The `aud` incoming service tokens must carry."""
        return self.mesh_auth_audience or self.service_name

    def secret_file(self, name: str) -> str | None:
        """Return the file a field was read from via `<NAME>_FILE`, or None."""
        return self._secret_files.get(name)


def _describe_errors(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        location = error.get("loc") or ()
        field = str(location[0]) if location else ""
        variable = env_name(field) if field else "settings"
        message = error.get("msg", "invalid")
        if error.get("type") == "missing":
            message = "required but not set"
        problems.append(f"{variable}: {message}")
    return problems


def load_settings(cls: type[_S]) -> _S:
    """Build a settings object from the environment, or exit with one readable paragraph.

    Args:
        cls: `ServiceSettings` or a service's subclass of it.

    Returns:
        The frozen settings.

    Raises:
        SystemExit: With exit status 2 when any variable is missing or invalid. The message names
            every bad variable and never echoes a value, so a secret cannot leak into a crash log.
    """
    try:
        return cls()
    except ValidationError as exc:
        problems = _describe_errors(exc)
    except (SecretFileError, SettingsError) as exc:
        # pydantic-settings reports unparsable JSON values with the field name in the message.
        problems = [str(exc).split("\n")[0]]
    message = (
        f"{cls.__name__}: cannot start, the environment is not valid: "
        + "; ".join(problems)
        + ". Fix these variables (secrets may also be given as <NAME>_FILE) and start again."
    )
    print(message, file=sys.stderr)
    raise SystemExit(2)
