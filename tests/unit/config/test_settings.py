"""ServiceSettings: environment names, defaults, secrets from files, and the fail-fast loader."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from libs.config import Port, ServiceSettings, load_settings, read_secret

REPO = Path(__file__).resolve().parents[3]


class OrdersSettings(ServiceSettings):
    """A service subclass as a service's config.py would write it."""

    service_name: str = "orders"
    grpc_port: Port = 50051
    metrics_port: Port = 9101
    inventory_addr: str = "127.0.0.1:50052"


def _is_settings_variable(name: str) -> bool:
    return name.removesuffix("_FILE").lower() in OrdersSettings.model_fields


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable these settings read, so the developer's shell cannot leak in."""
    for name in list(os.environ):
        if _is_settings_variable(name):
            monkeypatch.delenv(name)


def test_defaults_follow_the_architecture_page(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(OrdersSettings)

    assert settings.nats_url == "nats://127.0.0.1:4222"
    assert settings.grpc_host == "127.0.0.1"
    assert settings.database_url == "sqlite+aiosqlite:///.mesh/orders.db"
    assert settings.log_level == "INFO"
    assert settings.otel_exporter_otlp_endpoint is None
    assert settings.http_port is None


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRPC_PORT", "6001")
    monkeypatch.setenv("DATA_DIR", "/var/lib/mesh")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("INVENTORY_ADDR", "inventory:50052")

    settings = load_settings(OrdersSettings)

    assert settings.grpc_port == 6001
    assert settings.database_url == "sqlite+aiosqlite:////var/lib/mesh/orders.db"
    assert settings.log_level == "DEBUG"
    assert settings.inventory_addr == "inventory:50052"


def test_explicit_database_url_wins_over_the_derived_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://db/orders")

    assert load_settings(OrdersSettings).database_url == "postgresql+asyncpg://db/orders"


def test_settings_are_frozen() -> None:
    settings = load_settings(OrdersSettings)

    with pytest.raises(ValidationError):
        settings.grpc_port = 1  # type: ignore[misc]


def test_secrets_are_masked_in_repr_and_logs(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("MESH_AUTH_TOKEN", "eyJhbGciOiJIUzI1NiJ9.canary-token")
    settings = load_settings(OrdersSettings)

    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings %s", settings)

    assert "canary-token" not in repr(settings)
    assert "canary-token" not in str(settings)
    assert "canary-token" not in caplog.text
    assert read_secret(settings, "mesh_auth_token") == "eyJhbGciOiJIUzI1NiJ9.canary-token"


def test_secret_file_is_read_and_reread_after_rotation(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    secret = tmp_path / "token"
    secret.write_text("first-token\n")
    monkeypatch.setenv("MESH_AUTH_TOKEN_FILE", str(secret))
    settings = load_settings(OrdersSettings)
    first = read_secret(settings, "mesh_auth_token")

    secret.write_text("second-token\n")

    assert first == "first-token"
    assert read_secret(settings, "mesh_auth_token") == "second-token"
    assert settings.mesh_auth_token is not None
    assert settings.mesh_auth_token.get_secret_value() == "first-token"


def test_certificates_may_come_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "cert.pem").write_text("CERT")
    (tmp_path / "key.pem").write_text("KEY")
    monkeypatch.setenv("TLS_CERT_FILE", str(tmp_path / "cert.pem"))
    monkeypatch.setenv("TLS_KEY_FILE", str(tmp_path / "key.pem"))

    settings = load_settings(OrdersSettings)

    assert settings.tls_cert == "CERT"
    assert read_secret(settings, "tls_key") == "KEY"


def test_unset_secret_reads_as_none() -> None:
    assert read_secret(load_settings(OrdersSettings), "mesh_auth_signing_key") is None


def test_bad_environment_exits_naming_each_variable_without_values(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("GRPC_PORT", "not-a-port")
    monkeypatch.setenv("METRICS_PORT", "70000")
    monkeypatch.setenv("MESH_AUTH_KEYS", "s3cret-not-json")

    with pytest.raises(SystemExit) as exited:
        load_settings(OrdersSettings)

    message = capsys.readouterr().err
    assert exited.value.code == 2
    assert "GRPC_PORT" in message
    assert "METRICS_PORT" in message
    assert "MESH_AUTH_KEYS" in message
    assert "s3cret-not-json" not in message
    assert message.count("\n") == 1


def test_missing_required_variable_is_named(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings)

    message = capsys.readouterr().err
    assert "SERVICE_NAME: required but not set" in message
    assert "GRPC_PORT: required but not set" in message


def test_unreadable_secret_file_names_the_variable(monkeypatch: pytest.MonkeyPatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("MESH_AUTH_TOKEN_FILE", str(tmp_path / "missing"))

    with pytest.raises(SystemExit):
        load_settings(OrdersSettings)

    assert "MESH_AUTH_TOKEN_FILE" in capsys.readouterr().err


def test_secret_given_twice_is_refused(monkeypatch: pytest.MonkeyPatch, capsys, tmp_path) -> None:
    (tmp_path / "token").write_text("from-file")
    monkeypatch.setenv("MESH_AUTH_TOKEN", "from-env")
    monkeypatch.setenv("MESH_AUTH_TOKEN_FILE", str(tmp_path / "token"))

    with pytest.raises(SystemExit):
        load_settings(OrdersSettings)

    assert "MESH_AUTH_TOKEN and MESH_AUTH_TOKEN_FILE are both set" in capsys.readouterr().err


def test_auth_keys_must_be_a_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_AUTH_KEYS", json.dumps({"k1": "secret-one", "k2": "secret-two"}))

    settings = load_settings(OrdersSettings)

    assert json.loads(read_secret(settings, "mesh_auth_keys") or "") == {
        "k1": "secret-one",
        "k2": "secret-two",
    }


def test_process_exits_with_a_paragraph_and_no_traceback(tmp_path) -> None:
    env = {
        k: v for k, v in os.environ.items() if k.split("_FILE")[0].lower() not in OrdersSettings.model_fields
    }
    env["GRPC_PORT"] = "abc"
    script = "from libs.config import ServiceSettings, load_settings; load_settings(ServiceSettings)"

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "GRPC_PORT" in result.stderr and "SERVICE_NAME" in result.stderr
