"""TLS and mTLS credentials from TLS_CERT, TLS_KEY and TLS_CA (PEM, or their `_FILE` variants)."""

from __future__ import annotations

import grpc

from libs.config import ServiceSettings, read_secret


def _pem(settings: ServiceSettings, name: str) -> bytes | None:
    value = read_secret(settings, name)
    return value.encode() if value else None


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    """Return server credentials, or None for plaintext (no TLS_CERT/TLS_KEY).

    With TLS_CA set, clients must present a certificate signed by it (mTLS, reliability.md C2).

    Args:
        settings: Service settings.

    Returns:
        Credentials for `add_secure_port`, or None.
    """
    cert, key = _pem(settings, "tls_cert"), _pem(settings, "tls_key")
    if cert is None or key is None:
        return None
    ca = _pem(settings, "tls_ca")
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def channel_credentials(settings: ServiceSettings) -> grpc.ChannelCredentials | None:
    """Return channel credentials, or None for plaintext (neither TLS_CA nor TLS_CERT set).

    TLS_CA verifies the server (the system roots when unset); TLS_CERT/TLS_KEY are presented as the
    client certificate for mTLS.

    Args:
        settings: The calling service's settings.

    Returns:
        Credentials for `grpc.aio.secure_channel`, or None.
    """
    ca, cert = _pem(settings, "tls_ca"), _pem(settings, "tls_cert")
    if ca is None and cert is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=_pem(settings, "tls_key"), certificate_chain=cert
    )
