"""ServiceSettings: a TLS certificate without its key (or the reverse) is refused at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from libs.config import ServiceSettings, load_settings

TLS_VARIABLES = ("TLS_CERT", "TLS_KEY", "TLS_CA", "TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_CA_FILE")


@pytest.fixture(autouse=True)
def clean_tls_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove the TLS variables, so the developer's shell cannot complete a half-given pair."""
    for name in TLS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("given", [{"tls_cert": "CERT"}, {"tls_key": "KEY"}], ids=["cert-only", "key-only"])
def test_half_a_tls_pair_is_refused(given: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="TLS_CERT and TLS_KEY must be set together"):
        ServiceSettings(service_name="orders", grpc_port=0, metrics_port=0, **given)


def test_loader_exits_when_the_key_is_missing(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("SERVICE_NAME", "orders")
    monkeypatch.setenv("GRPC_PORT", "50051")
    monkeypatch.setenv("METRICS_PORT", "9101")
    monkeypatch.setenv("TLS_CERT", "-----BEGIN CERTIFICATE-----")

    with pytest.raises(SystemExit) as exited:
        load_settings(ServiceSettings)

    assert exited.value.code == 2
    assert "TLS_CERT and TLS_KEY must be set together" in capsys.readouterr().err


def test_a_complete_pair_is_accepted() -> None:
    settings = ServiceSettings(
        service_name="orders", grpc_port=0, metrics_port=0, tls_cert="CERT", tls_key="KEY"
    )

    assert settings.tls_cert == "CERT"
    assert settings.tls_key is not None and settings.tls_key.get_secret_value() == "KEY"
