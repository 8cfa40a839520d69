"""Channel reconciliation (I5): what a sales channel (Shopify) shows against the mesh's figure.

The shopify-adapter re-reads Shopify's `available` per location (`INVENTORY_VERIFY_S`) and reports
each level that differs from what it last pushed (`ReportChannelCount`). Here, inside one ledger
transaction with the position locked, the channel's figure is compared with the mesh's channel
availability *now*: a push already on its way (the position moved since the adapter's push, e.g.
the mesh reserved the order Shopify sold) explains the difference when the figures agree, and
nothing is recorded. Otherwise the drift is judged against the SKU's reconciliation bound
(`domain.reconciliation.judge_channel`), recorded in `inventory_drift` with the evidence (the
channel's figure, what it was last told, the position's buckets) and published as
InventoryDriftDetected (bucket CHANNEL_AVAILABLE, compared system SHOPIFY). The position itself
never changes: a channel holds no stock. Decision: docs/decisions/0021-shopify-availability-drift.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from libs.bus.envelope import new_event_id
from retail.common.v1 import common_pb2
from retail.inventory.v1 import events_pb2, inventory_pb2
from services.inventory.domain.position import Position
from services.inventory.domain.reconciliation import Outcome, judge_channel
from services.inventory.ledger import Ledger, Work, now
from services.inventory.store.tables import DriftRow

#: The drift row's bucket for channel availability (derived, never adjusted).
BUCKET = "channel_available"


@dataclass(frozen=True)
class ChannelCount:
    """What a channel showed for one SKU at one location, and what it had last been told."""

    source_system: int
    channel: str
    sku: str
    location_id: str
    observed: int
    pushed: int
    pushed_version: int
    observed_at: datetime


@dataclass(frozen=True)
class ChannelVerdict:
    """The comparison: `outcome` None when the channel shows the mesh's figure now."""

    outcome: Outcome | None
    channel_available: int
    position_version: int
    drift_id: str = ""


async def report_channel_count(
    ledger: Ledger, unit: Work, *, request_id: str, count: ChannelCount
) -> ChannelVerdict:
    """Compare a channel's figure with the mesh's channel availability; record and publish a drift.

    Args:
        ledger: the ledger (policy, outbox).
        unit: the transaction; the position is locked (not created) for a consistent read.
        request_id: the report's request id, part of the drift id.
        count: what the channel showed.
    """
    await unit.lock([(count.sku, count.location_id)])
    position = unit.position(count.sku, count.location_id) or Position(count.sku, count.location_id)
    rule = ledger.policy.rule(count.channel, count.sku)
    mesh = rule.available(position) if rule.ships_from(count.location_id) else 0
    outcome = judge_channel(mesh, count.observed, ledger.policy.reconciliation.bound(count.sku))
    if outcome is None:
        return ChannelVerdict(None, mesh, position.version)
    result = count.observed if outcome is Outcome.ESCALATED_HELD else mesh
    source = common_pb2.SourceSystem.Name(count.source_system).removeprefix("SOURCE_SYSTEM_")
    if await _held_before(unit, count, source, mesh, outcome):
        return ChannelVerdict(outcome, mesh, position.version)
    bound = ledger.policy.reconciliation.bound(count.sku)
    evidence = _evidence(
        count,
        position,
        source=source,
        mesh=mesh,
        outcome=outcome,
        result=result,
        bound=bound.describe(),
        policy_version=ledger.policy.version,
        request_id=request_id,
    )
    event = events_pb2.InventoryDriftDetected(
        sku=count.sku,
        location_id=count.location_id,
        compared_system=count.source_system,
        bucket=inventory_pb2.INVENTORY_BUCKET_CHANNEL_AVAILABLE,
        expected=mesh,
        observed=count.observed,
        auto_repaired=outcome.repaired,
        evidence=evidence,
        channel=count.channel,
    )
    event.meta.event_id = new_event_id()
    event.meta.source_system = common_pb2.SOURCE_SYSTEM_MESH
    unit.emit(event, position.key)
    drift_id = f"{request_id}/{count.sku}/{BUCKET}"
    unit.session.add(
        DriftRow(
            drift_id=drift_id,
            sku=count.sku,
            location_id=count.location_id,
            bucket=BUCKET,
            source_system=source,
            snapshot_id=request_id,
            as_of=count.observed_at,
            mesh=mesh,
            in_flight=0,
            expected=mesh,
            observed=count.observed,
            reserved=position.reserved,
            committed=position.committed,
            allocated=0,
            bound=bound.describe(),
            policy_version=ledger.policy.version,
            outcome=outcome.value,
            result=result,
            evidence=evidence,
            event_id=event.meta.event_id,
            detected_at=now(),
        )
    )
    await unit.session.flush()
    return ChannelVerdict(outcome, mesh, position.version, drift_id)


async def _held_before(unit: Work, count: ChannelCount, source: str, mesh: int, outcome: Outcome) -> bool:
    """True when this is a held drift already recorded with the same figures (nothing new)."""
    if outcome is not Outcome.ESCALATED_HELD:
        return False
    last = (
        await unit.session.execute(
            select(DriftRow)
            .where(
                DriftRow.sku == count.sku,
                DriftRow.location_id == count.location_id,
                DriftRow.bucket == BUCKET,
                DriftRow.source_system == source,
            )
            .order_by(DriftRow.detected_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return (
        last is not None
        and last.outcome == outcome.value
        and (last.expected, last.observed) == (mesh, count.observed)
    )


def _evidence(
    count: ChannelCount,
    position: Position,
    *,
    source: str,
    mesh: int,
    outcome: Outcome,
    result: int,
    bound: str,
    policy_version: str,
    request_id: str,
) -> str:
    """The drift in words, for the people who work the exception (no personal data)."""
    drift = count.observed - mesh
    lines = [
        f"{count.channel} availability of {position.key}: {source} shows {count.observed}, "
        f"the mesh offers {mesh} (drift {drift:+d}).",
        f"{source} was last told {count.pushed} (position version {count.pushed_version}); "
        f"read at {count.observed_at.astimezone(UTC).isoformat()} (report {request_id}).",
        f"Position version {position.version}: on_hand {position.on_hand}, reserved {position.reserved}, "
        f"committed {position.committed}, damaged {position.damaged}, quality_control "
        f"{position.quality_control}, safety_stock {position.safety_stock}, incoming {position.incoming}, "
        f"available_to_sell {position.available_to_sell}.",
    ]
    if count.pushed_version < position.version and count.pushed != mesh:
        lines.append(
            f"The position changed since that push ({count.pushed} → {mesh}); the difference is "
            "counted against the mesh's figure now."
        )
    if drift < 0:
        lines.append(
            f"{source} shows less: a sale there the mesh has not reserved yet, or stock taken off "
            "sale by hand."
        )
    else:
        lines.append(f"{source} shows more: stock added there by hand, or a restock the mesh does not know.")
    action = {
        Outcome.REPAIRED: f"Within bound {bound}: repaired, {source} is set to the mesh's {result} again.",
        Outcome.ESCALATED_APPLIED: (
            f"Beyond bound {bound}: {source} is set to the mesh's lower {result} at once (never offer "
            "what may not exist); needs a person (record real stock in the mesh with an Adjust or a "
            "receipt)."
        ),
        Outcome.ESCALATED_HELD: (
            f"Beyond bound {bound}: held, {source} keeps its lower {result} as a ceiling; needs a person "
            f"(lower the mesh with an Adjust, or set {source} back to {mesh})."
        ),
    }[outcome]
    lines.append(f"{action} Policy {policy_version}.")
    return " ".join(lines)[:4000]
