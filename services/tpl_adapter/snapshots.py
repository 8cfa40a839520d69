"""Inventory snapshots from the 3PL (I5): read stock per fulfillment center and apply it to the
inventory service, at start, periodically and on RunReconciliation, so positions exist before the
first order and drift is corrected from the warehouse's own count."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc

from retail.inventory.v1 import inventory_service_pb2, inventory_service_pb2_grpc
from services.tpl_adapter.clients.mesh import is_transient
from services.tpl_adapter.clients.tpl_api import TplApi, TplError
from services.tpl_adapter.translate.inventory import snapshots_from_levels

log = logging.getLogger(__name__)

#: The shortest wait between pulls however soon the 3PL says to come back (a `Retry-After: 0`
#: must not turn the retry into a busy loop).
_MIN_RETRY_S = 0.1


class SnapshotFailed(Exception):
    """A pull that did not complete; `transient` says whether a later one can succeed, and
    `retry_after` when the 3PL said (a 429's Retry-After)."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


@dataclass
class PullResult:
    """What one pull did."""

    snapshot_id: str
    locations: int
    lines: int
    drifted: int
    changed: int


async def apply_snapshots(
    inventory: inventory_service_pb2_grpc.InventoryServiceStub,
    requests: list[inventory_service_pb2.ApplySnapshotRequest],
    *,
    timeout_s: float = 30.0,
) -> tuple[int, int]:
    """ApplySnapshot for each location; returns (positions changed, drifts).

    Raises:
        SnapshotFailed: a call failed.
    """
    changed = drifted = 0
    for request in requests:
        try:
            reply = await inventory.ApplySnapshot(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise SnapshotFailed(
                f"ApplySnapshot {request.location_id}: {error.code().name} {error.details()}",
                transient=is_transient(error),
            ) from error
        changed += reply.positions_changed
        drifted += len(reply.drifts)
    return changed, drifted


class InventoryPuller:
    """Pulls the 3PL's inventory levels and applies them per location.

    Args:
        api: The 3PL API.
        inventory: An InventoryService stub.
        interval_s: Seconds between pulls after the first; 0 for none.
    """

    def __init__(
        self, api: TplApi, inventory: inventory_service_pb2_grpc.InventoryServiceStub, *, interval_s: float
    ) -> None:
        self._api = api
        self._inventory = inventory
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.last: PullResult | None = None

    async def pull(self) -> PullResult:
        """One pull now; the snapshot id names this fetch (time-ordered, so a retried apply of
        the same fetch is a replay and an older fetch never overwrites a newer one)."""
        as_of = datetime.now(UTC)
        snapshot_id = f"tpl-inv-{as_of.strftime('%Y%m%dT%H%M%S.%fZ')}"
        try:
            items = await self._api.inventory_levels()
        except TplError as error:
            raise SnapshotFailed(
                f"3PL inventory: {error}", transient=error.transient, retry_after=error.retry_after
            ) from error
        requests = snapshots_from_levels(items, snapshot_id=snapshot_id, as_of=as_of)
        changed, drifted = await apply_snapshots(self._inventory, requests)
        self.last = PullResult(
            snapshot_id, len(requests), sum(len(r.lines) for r in requests), drifted, changed
        )
        log.info(
            "3PL inventory snapshot applied", extra={"snapshot_id": snapshot_id, "locations": len(requests)}
        )
        return self.last

    def start(self) -> None:
        """Pull now (retrying until one succeeds) and then every interval, in the background."""
        self._task = asyncio.create_task(self._run(), name="tpl-inventory-pull")

    async def stop(self) -> None:
        """Stop pulling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            try:
                await self.pull()
                backoff = 1.0
                if self._interval_s <= 0:
                    return
                await asyncio.sleep(self._interval_s)
            except SnapshotFailed as failure:
                log.warning("3PL inventory snapshot failed", extra={"error": str(failure)})
                if failure.retry_after is not None:
                    # The 3PL said when (M3): its per-minute window has room again then. Backing
                    # off further would leave stock unread for up to a minute after that.
                    await asyncio.sleep(max(failure.retry_after, _MIN_RETRY_S))
                    continue
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max(self._interval_s, 30.0))
