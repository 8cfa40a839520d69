"""Per-operation fault injection for the sandbox stand-ins: latency, errors, timeouts, lost responses.

Each stand-in names its operations (``"salesOrders.create"``, ``"graphql"``, ``"orders.create"``...)
and calls :meth:`FaultInjector.before` on entry and :meth:`FaultInjector.should_drop_response` after
a write has committed. The operation ``"*"`` configures every operation; a specific operation's
setting replaces ``"*"`` for that operation. Randomness comes from one seeded ``random.Random`` so a
run with the same seed and the same request sequence injects the same faults.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

ALL_OPERATIONS = "*"
FAULT_HEADER = "X-Sandbox-Fault"


class Fault(BaseModel):
    """What to do to one operation. Every rate is a probability per request, drawn independently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: int = Field(0, ge=0, description="added to every request before it is handled")
    error_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of requests answered with an error")
    error_status: int = Field(503, ge=400, le=599, description="status of the injected error")
    retry_after_s: float = Field(1.0, ge=0.0, description="sent as Retry-After when error_status is 429")
    timeout_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of requests that hang")
    timeout_s: float = Field(30.0, ge=0.0, description="how long a hanging request hangs")
    drop_response_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="share of writes that commit, then answer 504 instead"
    )


def retry_after_header(seconds: float) -> str:
    """Format a delay as an HTTP Retry-After value (whole seconds, rounded up, as RFC 9110 requires)."""
    return str(max(0, math.ceil(seconds)))


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """The sandbox-wide error body: ``{"error": {"code": ..., "message": ...}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def dropped_response() -> Response:
    """The answer to a write that committed but whose response the fault injector 'lost'."""
    return error_response(
        504,
        "GatewayTimeout",
        "The request was processed but the response was lost (sandbox fault: dropped after commit).",
        headers={FAULT_HEADER: "dropped-after-commit"},
    )


class FaultInjector:
    """Holds the fault settings of one stand-in and applies them to requests.

    Args:
        seed: seed of the random generator deciding which requests fail.
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._seed = seed
        self._random = random.Random(seed)
        self._release: asyncio.Event | None = None
        self._release_loop: asyncio.AbstractEventLoop | None = None

    @property
    def seed(self) -> int:
        """The seed the generator was last (re)seeded with."""
        return self._seed

    def configure(self, operation: str, fault: Fault | Mapping[str, Any]) -> Fault:
        """Set (replace) the fault of one operation, or of every operation with ``"*"``.

        Raises:
            pydantic.ValidationError: when ``fault`` is a mapping that is not a valid :class:`Fault`.
        """
        parsed = fault if isinstance(fault, Fault) else Fault.model_validate(fault)
        with self._lock:
            self._faults[operation] = parsed
        return parsed

    def configure_many(self, faults: Mapping[str, Fault | Mapping[str, Any]]) -> None:
        """Set several operations at once, all or nothing: ``{"<operation>": {...}, ...}``."""
        parsed = {op: f if isinstance(f, Fault) else Fault.model_validate(f) for op, f in faults.items()}
        with self._lock:
            self._faults.update(parsed)

    def remove(self, operation: str) -> None:
        """Forget the setting of one operation."""
        with self._lock:
            self._faults.pop(operation, None)

    def clear(self) -> None:
        """Forget every setting and let requests that are hanging in a timeout fault return now."""
        with self._lock:
            self._faults.clear()
            release, self._release = self._release, None
            loop, self._release_loop = self._release_loop, None
        if release is not None and loop is not None and not loop.is_closed():
            # clear() may be called from another thread than the server's loop (a test, say).
            loop.call_soon_threadsafe(release.set)

    def reseed(self, seed: int) -> None:
        """Restart the random generator from ``seed``."""
        with self._lock:
            self._seed = seed
            self._random = random.Random(seed)

    def fault_for(self, operation: str) -> Fault | None:
        """The fault that applies to ``operation``: its own, else ``"*"``, else none."""
        with self._lock:
            return self._faults.get(operation) or self._faults.get(ALL_OPERATIONS)

    def snapshot(self) -> dict[str, Any]:
        """The seed and every configured fault, JSON-ready."""
        with self._lock:
            return {
                "seed": self._seed,
                "faults": {op: f.model_dump() for op, f in sorted(self._faults.items())},
            }

    def _roll(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._lock:
            return self._random.random() < rate

    async def _hang(self, seconds: float) -> None:
        # Waits on an event rather than a bare sleep so that clear() (and so DELETE /_sandbox/faults
        # or a reset) frees hanging requests and a test server can shut down promptly.
        with self._lock:
            if self._release is None:
                self._release = asyncio.Event()
                self._release_loop = asyncio.get_running_loop()
            release = self._release
        try:
            await asyncio.wait_for(release.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def before(self, operation: str) -> Response | None:
        """Apply the fault of ``operation`` before handling it.

        Sleeps the latency; then maybe hangs for ``timeout_s`` (the caller's client times out first)
        and answers 504; then maybe answers the configured error. Returns ``None`` when the request
        should be handled normally.
        """
        fault = self.fault_for(operation)
        if fault is None:
            return None
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        if self._roll(fault.timeout_rate):
            await self._hang(fault.timeout_s)
            return error_response(
                504,
                "GatewayTimeout",
                f"{operation} timed out (sandbox fault).",
                headers={FAULT_HEADER: "timeout"},
            )
        if self._roll(fault.error_rate):
            status = fault.error_status
            headers = {FAULT_HEADER: "error"}
            if status == 429:
                headers["Retry-After"] = retry_after_header(fault.retry_after_s)
            try:
                code = HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
            except ValueError:
                code = f"Http{status}"
            return error_response(status, code, f"{operation} failed (sandbox fault {status}).", headers)
        return None

    def should_drop_response(self, operation: str) -> bool:
        """After a write committed: should its response be replaced by :func:`dropped_response`?"""
        fault = self.fault_for(operation)
        return fault is not None and self._roll(fault.drop_response_rate)

    async def guard(self, operation: str, handle: Callable[[], Awaitable[Response]]) -> Response:
        """Run ``handle`` under the fault of ``operation``: before, the handler, then maybe drop.

        A response that is already an error (status >= 400) is never dropped: nothing committed.
        """
        early = await self.before(operation)
        if early is not None:
            return early
        response = await handle()
        if response.status_code < 400 and self.should_drop_response(operation):
            return dropped_response()
        return response
