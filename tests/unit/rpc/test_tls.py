"""mTLS: a server with TLS_CERT/TLS_KEY/TLS_CA serves only clients holding a certificate from the CA."""

from __future__ import annotations

import datetime
import ipaddress

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import wrappers_pb2

from libs.rpc import channel, channel_credentials

from .conftest import make_settings
from .probe import ProbeStub

S = wrappers_pb2.StringValue


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _issue(
    name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *, ca: bool = False
):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


@pytest.fixture(scope="module")
def pki() -> dict[str, str]:
    """A throwaway CA with a server and a client certificate, as PEM strings."""
    ca = _issue("retail-mesh test CA", None, ca=True)
    server = _issue("probe", ca)
    client = _issue("orders", ca)
    pem = lambda cert: cert.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    return {
        "ca": pem(ca[0]),
        "server_cert": pem(server[0]),
        "server_key": _pem_key(server[1]),
        "client_cert": pem(client[0]),
        "client_key": _pem_key(client[1]),
    }


@pytest.fixture
async def mtls_server(start_server, pki):
    """A probe server requiring client certificates from the test CA."""
    settings = make_settings(tls_cert=pki["server_cert"], tls_key=pki["server_key"], tls_ca=pki["ca"])
    return await start_server(settings)


async def test_client_with_a_certificate_from_the_ca_is_served(mtls_server, pki) -> None:
    caller = make_settings(
        service_name="orders", tls_cert=pki["client_cert"], tls_key=pki["client_key"], tls_ca=pki["ca"]
    )

    async with channel(f"127.0.0.1:{mtls_server.port}", settings=caller) as ch:
        reply = await ProbeStub(ch).Echo(S(), timeout=5)

    assert reply.value


async def test_client_without_a_certificate_is_refused(mtls_server, pki) -> None:
    caller = make_settings(service_name="orders", tls_ca=pki["ca"])

    async with channel(f"127.0.0.1:{mtls_server.port}", settings=caller, max_attempts=2) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await ProbeStub(ch).Echo(S(), timeout=5)

    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_plaintext_client_is_refused(mtls_server) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mtls_server.port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await ProbeStub(ch).Echo(S(), timeout=5)

    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


def test_no_tls_settings_means_plaintext() -> None:
    assert channel_credentials(make_settings()) is None
