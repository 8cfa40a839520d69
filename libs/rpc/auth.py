"""Service-to-service tokens (S2): JWT verification with per-method scopes, and minting for callers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from libs.config import ServiceSettings, parse_key_set, read_secret

#: Methods callable without a token: probes and tooling must work before any key is distributed.
OPEN_METHOD_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
# Shorter lifetimes limit a stolen token; 15 minutes is the ceiling of reliability.md C2.
MAX_TTL_S = 15 * 60
# Clock skew tolerated between services (reliability.md C2: at most 60 s).
LEEWAY_S = 30
# How long a key set read from a file is trusted before the file is read again (rotation delay).
KEY_REFRESH_S = 10.0
# HS256 secrets shorter than this are guessable offline from one captured token.
MIN_HMAC_KEY_BYTES = 32

#: Methods map to the scope a caller's token must carry: `{"/retail.orders.v1.OrderService/AcceptOrder":
#: "orders:write"}`; `"/retail.orders.v1.OrderService/*"` covers a whole service.
ScopeMap = Mapping[str, str]
#: Returns the bearer token to send on the next call, or None to send none.
TokenProvider = Callable[[], str | None]


class AuthError(Exception):
    """A token is missing, malformed, expired, or signed by an unknown key (UNAUTHENTICATED)."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of the current RPC.

    Attributes:
        subject: `sub` claim: the calling service's name.
        scopes: Scopes granted by the token.
        claims: All verified claims (for object-level checks, e.g. a `shop` claim).
    """

    subject: str
    scopes: frozenset[str]
    claims: Mapping[str, Any] = field(repr=False)


#: The caller of the RPC being served, set by the auth interceptor; None when auth is off.
current_principal: ContextVar[Principal | None] = ContextVar("current_principal", default=None)


@dataclass(frozen=True)
class _Key:
    algorithm: str
    material: Any


def _load_verify_key(material: str) -> _Key:
    """Ed25519 public keys in PEM verify EdDSA tokens; anything else is an HS256 shared secret.

    Each key is pinned to one algorithm, so a public key can never be replayed as an HMAC secret.
    """
    if material.lstrip().startswith("-----BEGIN"):
        key = load_pem_public_key(material.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("only Ed25519 public keys are accepted")
        return _Key("EdDSA", key)
    if len(material.encode()) < MIN_HMAC_KEY_BYTES:
        raise ValueError(f"HS256 secrets must be at least {MIN_HMAC_KEY_BYTES} bytes")
    return _Key("HS256", material)


def _load_signing_key(material: str) -> _Key:
    if material.lstrip().startswith("-----BEGIN"):
        key = load_pem_private_key(material.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("only Ed25519 private keys are accepted")
        return _Key("EdDSA", key)
    if len(material.encode()) < MIN_HMAC_KEY_BYTES:
        raise ValueError(f"HS256 secrets must be at least {MIN_HMAC_KEY_BYTES} bytes")
    return _Key("HS256", material)


def _scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    # `scope` is a space-separated string (RFC 8693); some issuers send a list under `scp`.
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(str(s) for s in raw)
    return frozenset()


class TokenVerifier:
    """Verifies service tokens: signature, `iss`, `aud`, `exp`, and lifetime.

    Keys come from a key set `{kid: key}` (MESH_AUTH_KEYS): two entries during rotation. A token's
    `kid` header picks its key; a token without `kid` is tried against every key.
    """

    def __init__(
        self,
        keys: Mapping[str, str] | Callable[[], Mapping[str, str]],
        *,
        issuer: str,
        audience: str,
        leeway_s: float = LEEWAY_S,
        refresh_s: float = KEY_REFRESH_S,
    ) -> None:
        """Create a verifier.

        Args:
            keys: The key set, or a function returning the current one (re-read for rotation).
            issuer: Required `iss`.
            audience: Required `aud` (this service's name).
            leeway_s: Tolerated clock skew.
            refresh_s: How often a callable key source is consulted again.

        Raises:
            ValueError: A key is unusable (short HMAC secret, non-Ed25519 PEM).
        """
        self._source = keys if callable(keys) else (lambda: keys)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_s
        self._refresh = refresh_s
        self._raw: Mapping[str, str] | None = None
        self._keys: dict[str, _Key] = {}
        self._loaded_at = float("-inf")
        self._current_keys()  # fail at start, not on the first call, when a key is bad

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> TokenVerifier | None:
        """Build the verifier a service's settings ask for; None when MESH_AUTH_KEYS is unset (dev)."""
        if settings.mesh_auth_keys is None:
            return None

        def keys() -> Mapping[str, str]:
            return parse_key_set(read_secret(settings, "mesh_auth_keys") or "")

        return cls(keys, issuer=settings.mesh_auth_issuer, audience=settings.auth_audience)

    def _current_keys(self) -> dict[str, _Key]:
        now = time.monotonic()
        if now - self._loaded_at >= self._refresh:
            raw = dict(self._source())
            if raw != self._raw:
                self._keys = {kid: _load_verify_key(material) for kid, material in raw.items()}
                self._raw = raw
            self._loaded_at = now
        return self._keys

    def verify(self, token: str) -> Principal:
        """Verify a token and return its principal.

        Args:
            token: The compact JWT (without `Bearer `).

        Returns:
            The caller.

        Raises:
            AuthError: With a short reason safe to return to the caller.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        keys = self._current_keys()
        kid = header.get("kid")
        if kid is not None:
            if kid not in keys:
                raise AuthError("token signed by an unknown key")
            candidates = [keys[kid]]
        else:
            candidates = list(keys.values())
        last_error = "invalid token"
        for key in candidates:
            try:
                claims = jwt.decode(
                    token,
                    key.material,
                    algorithms=[key.algorithm],
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway,
                    options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                )
            except jwt.ExpiredSignatureError:
                raise AuthError("token expired") from None
            except jwt.InvalidSignatureError:
                last_error = "bad token signature"
                continue
            except jwt.PyJWTError as exc:
                raise AuthError(f"invalid token: {exc}") from None
            if claims["exp"] - claims["iat"] > MAX_TTL_S + self._leeway:
                raise AuthError("token lifetime exceeds the allowed maximum")
            return Principal(subject=str(claims["sub"]), scopes=_scopes_of(claims), claims=claims)
        raise AuthError(last_error)


def required_scope(scopes: ScopeMap, method: str) -> str | None:
    """Return the scope `method` requires: an exact entry, else the service's `/*` entry, else None."""
    if method in scopes:
        return scopes[method]
    service = method.rsplit("/", 1)[0]
    return scopes.get(f"{service}/*")


def is_open_method(method: str) -> bool:
    """Tell whether `method` is callable without a token (health, reflection)."""
    return method.startswith(OPEN_METHOD_PREFIXES)


def mint_token(
    key: str,
    *,
    issuer: str,
    audience: str | Iterable[str],
    subject: str,
    scopes: Iterable[str],
    kid: str | None = None,
    ttl_s: int = 300,
    now: float | None = None,
) -> str:
    """Sign a service token.

    Args:
        key: HS256 secret, or an Ed25519 private key in PEM (EdDSA).
        issuer: `iss`.
        audience: `aud`: the target service name(s).
        subject: `sub`: the calling service's name.
        scopes: Scopes to grant.
        kid: Key id put in the header, to pick the verify key during rotation.
        ttl_s: Lifetime; at most 15 minutes.
        now: Issue time (epoch seconds); now by default. Tests pass the past to make expired tokens.

    Returns:
        The compact JWT.
    """
    if ttl_s > MAX_TTL_S:
        raise ValueError(f"ttl_s must be at most {MAX_TTL_S}")
    signing = _load_signing_key(key)
    issued = int(now if now is not None else time.time())
    aud = audience if isinstance(audience, str) else list(audience)
    claims = {
        "iss": issuer,
        "aud": aud,
        "sub": subject,
        "scope": " ".join(sorted(scopes)),
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": str(uuid.uuid4()),
    }
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, signing.material, algorithm=signing.algorithm, headers=headers)


class MintingTokenProvider:
    """Mints tokens for one target and reuses each until a minute before it expires."""

    def __init__(
        self,
        key: Callable[[], str | None],
        *,
        issuer: str,
        audience: str,
        subject: str,
        scopes: Iterable[str],
        kid: str | None = None,
        ttl_s: int = 300,
    ) -> None:
        """Create a provider.

        Args:
            key: Returns the current signing key (re-read for rotation).
            issuer: `iss` of minted tokens.
            audience: Target service name.
            subject: This service's name.
            scopes: Scopes to request.
            kid: Key id header.
            ttl_s: Lifetime of each token.
        """
        self._key = key
        self._claims = {"issuer": issuer, "audience": audience, "subject": subject, "scopes": tuple(scopes)}
        self._kid = kid
        self._ttl = ttl_s
        self._token: str | None = None
        self._renew_at = 0.0

    def __call__(self) -> str | None:
        """Return a valid token, minting a new one when the cached one nears expiry."""
        now = time.time()
        if self._token is None or now >= self._renew_at:
            key = self._key()
            if key is None:
                return None
            self._token = mint_token(key, kid=self._kid, ttl_s=self._ttl, now=now, **self._claims)
            self._renew_at = now + max(self._ttl - 60, self._ttl / 2)
        return self._token


def token_provider_for(settings: ServiceSettings, audience: str) -> TokenProvider | None:
    """Return how this service obtains tokens for calls to `audience`, from its settings.

    MESH_AUTH_TOKEN (usually `_FILE`, issued by the platform and rotated in place) wins; otherwise,
    with MESH_AUTH_SIGNING_KEY, the service mints its own tokens with MESH_AUTH_CLIENT_SCOPES;
    otherwise no token is sent (dev).

    Args:
        settings: The calling service's settings.
        audience: The target service's name (`inventory`).

    Returns:
        A provider, or None.
    """
    if settings.mesh_auth_token is not None:
        return lambda: read_secret(settings, "mesh_auth_token")
    if settings.mesh_auth_signing_key is not None:
        return MintingTokenProvider(
            lambda: read_secret(settings, "mesh_auth_signing_key"),
            issuer=settings.mesh_auth_issuer,
            audience=audience,
            subject=settings.service_name,
            scopes=settings.mesh_auth_client_scopes.split(),
            kid=settings.mesh_auth_signing_kid,
        )
    return None
