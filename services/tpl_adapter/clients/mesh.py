"""Calling other mesh services: which gRPC failures are worth retrying."""

from __future__ import annotations

import grpc

TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNIMPLEMENTED,  # a peer still being rolled out: wait for it
}


def is_transient(error: grpc.aio.AioRpcError) -> bool:
    """True when calling again later can succeed."""
    return error.code() in TRANSIENT
