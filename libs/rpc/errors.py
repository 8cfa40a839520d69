"""Domain errors that servicers raise, and the gRPC status each one becomes."""

from __future__ import annotations

from typing import ClassVar

import grpc

#: Trailing metadata key carrying a DomainError's machine-readable reason (`TAX_REJECTED`).
REASON_KEY = "x-error-reason"


class DomainError(Exception):
    """A business outcome the caller must see as a gRPC status, not a crash.

    Servicers and domain code raise subclasses; the error-mapping interceptor turns them into the
    status in `code` with `message` as details, and `reason` (when given) as `x-error-reason`
    trailing metadata so callers and worklists can group failures by cause without parsing text.
    Raising the base class means a business rule refused the request (FAILED_PRECONDITION).

    Attributes:
        message: Human-readable details sent to the caller; never put personal data in it.
        reason: Optional stable reason code, upper snake case.
    """

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        """Create the error.

        Args:
            message: Details for the caller.
            reason: Stable reason code, e.g. `"INVALID_SKU"`.
        """
        super().__init__(message)
        self.message = message
        self.reason = reason

    @property
    def details(self) -> str:
        """The status details sent on the wire."""
        return self.message


class InvalidArgument(DomainError):
    """The request is malformed in a way validation rules could not express (INVALID_ARGUMENT).

    Attributes:
        field: Path of the offending field, e.g. `lines[0].sku`.
    """

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, message: str, *, reason: str | None = None) -> None:
        """Create the error.

        Args:
            field: Path of the offending field.
            message: What is wrong with it.
            reason: Stable reason code.
        """
        super().__init__(message, reason=reason)
        self.field = field

    @property
    def details(self) -> str:
        """`field: message`, the same shape as protovalidate violations."""
        return f"{self.field}: {self.message}"


class NotFound(DomainError):
    """The addressed entity does not exist (NOT_FOUND)."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(DomainError):
    """The entity is not in a state that allows the request (FAILED_PRECONDITION)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class AlreadyExists(DomainError):
    """Creating an entity that exists with different content (ALREADY_EXISTS)."""

    code = grpc.StatusCode.ALREADY_EXISTS


class Conflict(DomainError):
    """A concurrent change won (optimistic concurrency); the caller may re-read and retry (ABORTED)."""

    code = grpc.StatusCode.ABORTED


class PermissionDenied(DomainError):
    """The caller is authenticated but may not touch this object, e.g. another shop's (PERMISSION_DENIED)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(DomainError):
    """A dependency is down; retrying later may succeed (UNAVAILABLE; clients retry it)."""

    code = grpc.StatusCode.UNAVAILABLE


class ResourceExhausted(DomainError):
    """A budget or limit is used up; back off (RESOURCE_EXHAUSTED)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unimplemented(DomainError):
    """The RPC is declared in the contract but not built yet (UNIMPLEMENTED), never a fake success.

    The generated base servicers raise `NotImplementedError` for every RPC a servicer does not
    override; the error interceptor maps that to this status too.
    """

    code = grpc.StatusCode.UNIMPLEMENTED


_BY_CODE: dict[grpc.StatusCode, type[DomainError]] = {
    cls.code: cls
    for cls in (
        NotFound,
        FailedPrecondition,
        AlreadyExists,
        Conflict,
        PermissionDenied,
        Unavailable,
        ResourceExhausted,
        Unimplemented,
    )
}


def error_from_rpc(error: grpc.aio.AioRpcError) -> DomainError | None:
    """Turn a failed call back into the DomainError the remote servicer raised, for re-raising.

    Args:
        error: The failed call.

    Returns:
        The matching DomainError (with the remote reason), or None for statuses that are not domain
        outcomes (UNAUTHENTICATED, DEADLINE_EXCEEDED, INTERNAL, ...). INVALID_ARGUMENT is returned as
        an `InvalidArgument` whose field is the text before the first colon.
    """
    reason = next((str(v) for k, v in (error.trailing_metadata() or ()) if k == REASON_KEY), None)
    details = error.details() or ""
    if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
        field, _, message = details.partition(": ")
        return InvalidArgument(field, message, reason=reason) if message else InvalidArgument("", details)
    cls = _BY_CODE.get(error.code())
    return cls(details, reason=reason) if cls else None
