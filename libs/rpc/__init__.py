"""gRPC bootstrap: server with health and reflection, interceptors, auth, errors, client channels."""

from libs.rpc.auth import (
    AuthError,
    MintingTokenProvider,
    Principal,
    ScopeMap,
    TokenProvider,
    TokenVerifier,
    current_principal,
    mint_token,
    token_provider_for,
)
from libs.rpc.client import MeshClientInterceptor, channel, retry_service_config
from libs.rpc.deadline import remaining
from libs.rpc.errors import (
    AlreadyExists,
    Conflict,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    Unimplemented,
    error_from_rpc,
)
from libs.rpc.interceptors import default_interceptors
from libs.rpc.server import RpcServer
from libs.rpc.tls import channel_credentials, server_credentials

__all__ = [
    "AlreadyExists",
    "AuthError",
    "Conflict",
    "DomainError",
    "FailedPrecondition",
    "InvalidArgument",
    "MeshClientInterceptor",
    "MintingTokenProvider",
    "NotFound",
    "PermissionDenied",
    "Principal",
    "ResourceExhausted",
    "RpcServer",
    "ScopeMap",
    "TokenProvider",
    "TokenVerifier",
    "Unavailable",
    "Unimplemented",
    "channel",
    "channel_credentials",
    "current_principal",
    "default_interceptors",
    "error_from_rpc",
    "mint_token",
    "remaining",
    "retry_service_config",
    "server_credentials",
    "token_provider_for",
]
