"""Service-to-service auth (S2): bearer JWTs, per-method scopes, open health, key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import wrappers_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.rpc import AuthError, MintingTokenProvider, TokenVerifier, channel, mint_token, token_provider_for

from .conftest import make_settings
from .probe import SERVICE, ProbeStub

S = wrappers_pb2.StringValue
HS_KEY = "k" * 40
SCOPES = {
    f"/{SERVICE}/Echo": "probe:read",
    f"/{SERVICE}/Whoami": "probe:read",
    f"/{SERVICE}/Fail": "probe:write",
}


def _token(key: str = HS_KEY, *, scopes=("probe:read",), audience="probe", **kwargs) -> str:
    return mint_token(key, issuer="retail-mesh", audience=audience, subject="orders", scopes=scopes, **kwargs)


def _ed25519_pair() -> tuple[str, str]:
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


@pytest.fixture
async def secured(start_server):
    """A server with authentication on (HS256 key `k1`), and a plain channel to it."""
    settings = make_settings(mesh_auth_keys=json.dumps({"k1": HS_KEY}))
    server = await start_server(settings, scopes=SCOPES)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ProbeStub(ch), ch


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def _code(call) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_call_without_a_token_is_unauthenticated(secured) -> None:
    stub, _ = secured

    assert await _code(stub.Echo(S())) == grpc.StatusCode.UNAUTHENTICATED


async def test_token_with_the_wrong_scope_is_permission_denied(secured) -> None:
    stub, _ = secured

    code = await _code(stub.Fail(S(value="not_found"), metadata=_bearer(_token(scopes=("probe:read",)))))

    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_good_token_is_served_and_the_caller_is_known(secured) -> None:
    stub, _ = secured

    reply = await stub.Whoami(S(), metadata=_bearer(_token()))

    assert reply.value == "orders"


async def test_method_missing_from_the_scope_map_is_refused(secured) -> None:
    stub, _ = secured

    code = await _code(stub.Remaining(S(), metadata=_bearer(_token(scopes=("probe:read", "probe:write")))))

    assert code == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: _token(now=time.time() - 3600), id="expired"),
        pytest.param(lambda: _token(audience="inventory"), id="other-audience"),
        pytest.param(lambda: _token("x" * 40), id="wrong-key"),
        pytest.param(lambda: _token(kid="k9"), id="unknown-kid"),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
    ],
)
async def test_bad_tokens_are_unauthenticated(secured, token) -> None:
    stub, _ = secured

    assert await _code(stub.Echo(S(), metadata=_bearer(token()))) == grpc.StatusCode.UNAUTHENTICATED


async def test_health_and_reflection_need_no_token(secured) -> None:
    _, ch = secured

    reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())

    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_eddsa_tokens_verify_with_the_public_key(start_server) -> None:
    private_pem, public_pem = _ed25519_pair()
    server = await start_server(make_settings(mesh_auth_keys=json.dumps({"ed1": public_pem})), scopes=SCOPES)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        reply = await ProbeStub(ch).Whoami(S(), metadata=_bearer(_token(private_pem, kid="ed1")))

    assert reply.value == "orders"


def test_public_key_cannot_be_used_as_an_hmac_secret() -> None:
    # The classic algorithm-confusion forgery: an HS256 token "signed" with the public key's bytes.
    _, public_pem = _ed25519_pair()
    verifier = TokenVerifier({"ed1": public_pem}, issuer="retail-mesh", audience="probe")
    now = int(time.time())
    claims = {
        "iss": "retail-mesh",
        "aud": "probe",
        "sub": "evil",
        "scope": "admin",
        "iat": now,
        "exp": now + 60,
    }
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'ed1'})}.{_b64(claims)}"
    signature = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"

    with pytest.raises(AuthError):
        verifier.verify(forged)


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_both_keys_verify_during_rotation_and_a_removed_key_stops_working(tmp_path) -> None:
    keys = {"old": "o" * 40, "new": "n" * 40}
    verifier = TokenVerifier(lambda: keys, issuer="retail-mesh", audience="probe", refresh_s=0)

    assert verifier.verify(_token(keys["old"], kid="old")).subject == "orders"
    assert verifier.verify(_token(keys["new"], kid="new")).subject == "orders"
    del keys["old"]
    with pytest.raises(AuthError, match="unknown key"):
        verifier.verify(_token("o" * 40, kid="old"))


def test_key_file_rotation_is_picked_up_without_restart(tmp_path, monkeypatch) -> None:
    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps({"k1": "1" * 40}))
    monkeypatch.setenv("MESH_AUTH_KEYS_FILE", str(key_file))
    verifier = TokenVerifier.from_settings(make_settings())
    assert verifier is not None
    verifier._refresh = 0  # the 10 s production delay would make this test slow

    key_file.write_text(json.dumps({"k2": "2" * 40}))

    assert verifier.verify(_token("2" * 40, kid="k2")).subject == "orders"


def test_lifetimes_over_fifteen_minutes_are_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        _token(ttl_s=3600)


def test_short_hmac_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenVerifier({"k1": "short"}, issuer="retail-mesh", audience="probe")


def test_no_keys_means_authentication_is_off() -> None:
    assert TokenVerifier.from_settings(make_settings()) is None


async def test_channel_attaches_tokens_minted_from_settings(start_server) -> None:
    server = await start_server(make_settings(mesh_auth_keys=json.dumps({"k1": HS_KEY})), scopes=SCOPES)
    caller = make_settings(
        service_name="orders",
        mesh_auth_signing_key=HS_KEY,
        mesh_auth_signing_kid="k1",
        mesh_auth_client_scopes="probe:read",
    )

    async with channel(f"127.0.0.1:{server.port}", settings=caller, audience="probe") as ch:
        reply = await ProbeStub(ch).Whoami(S())

    assert reply.value == "orders"


async def test_channel_rereads_a_rotated_token_file(start_server, tmp_path, monkeypatch) -> None:
    server = await start_server(make_settings(mesh_auth_keys=json.dumps({"k1": HS_KEY})), scopes=SCOPES)
    token_file = tmp_path / "token"
    token_file.write_text(_token(now=time.time() - 3600))  # expired
    monkeypatch.setenv("MESH_AUTH_TOKEN_FILE", str(token_file))
    provider = token_provider_for(make_settings(service_name="orders"), "probe")

    async with channel(f"127.0.0.1:{server.port}", token_provider=provider) as ch:
        before = await _code(ProbeStub(ch).Echo(S()))
        token_file.write_text(_token())
        after = await _code(ProbeStub(ch).Echo(S()))

    assert before == grpc.StatusCode.UNAUTHENTICATED
    assert after == grpc.StatusCode.OK


def test_minting_provider_reuses_a_token_until_near_expiry() -> None:
    provider = MintingTokenProvider(
        lambda: HS_KEY, issuer="retail-mesh", audience="probe", subject="orders", scopes=["probe:read"]
    )

    assert provider() == provider()
