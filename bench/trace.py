"""Where one order's time went in a kept run (`--keep`, the mesh on SQLite), step by step.

    python -m bench.trace /tmp/retail-mesh-bench-sustained-mesh-XXXX            # the last 3 done
    python -m bench.trace /tmp/retail-mesh-bench-sustained-mesh-XXXX '#1085' '#1086'

One timeline per order, in seconds after the run's first checkout, merging what the stand-ins
recorded (Shopify's order and fulfillments, Business Central's sales order and invoices, the 3PL's
order and shipments) with what the services recorded about it: each event added to an outbox
(`+Event`, with when its PubAck came back) and each delivery or call a service handled (its
hop-log row: when the handling started and how long it took). An order-to-cash figure at 20 orders
a second is decided by the run's last orders, so this is the tool that says what they waited for:
the 3PL's next wave, a relay, a busy core.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.delivery import rows, seconds
from bench.figures import done_orders


@dataclass(frozen=True, order=True)
class Step:
    """One line of a timeline."""

    at: float
    who: str
    what: str


def _stand_in_steps(records: dict[str, Any], name: str) -> list[Step]:
    order = next((o for o in records["shopify"]["orders"] if o["name"] == name), None)
    if order is None:
        raise LookupError(f"no order {name} was placed in this run")
    steps = [Step(order["created_at"], "shopify", "order created")]
    steps += [Step(f["created_at"], "shopify", "fulfillment created") for f in order["fulfillments"]]
    for at in records["bc_counts"].get("created_at", {}).get("salesOrders", {}).get(name, []):
        steps.append(Step(at, "business-central", "sales order created"))
    for invoice in records["bc_state"].get("salesInvoices", []):
        if invoice.get("externalDocumentNumber") == name:
            steps.append(Step(seconds(invoice["lastModifiedDateTime"]), "business-central", "invoice posted"))
    for tpl_order in records["tpl_state"].get("orders", []):
        if tpl_order.get("order_number") != name:
            continue
        steps.append(
            Step(seconds(tpl_order["created_date"]), "3pl", f"order {tpl_order['reference_id']} created")
        )
        for shipment in tpl_order.get("shipments", []):
            if (shipment.get("tracking") or {}).get("shipping_date"):
                steps.append(Step(seconds(shipment["tracking"]["shipping_date"]), "3pl", "shipped"))
    return steps


_OUTBOX = "SELECT event_type, created_at, published_at FROM outbox WHERE key = ?"
_HOPS = "SELECT hop, outcome, created_at, latency_ms FROM hop_log WHERE correlation_id = ?"
_SUMMARIES = "SELECT order_id, channel_order_id, snapshot_json FROM order_summary"


def _mesh_steps(mesh_dir: Path, order_id: str, correlation_id: str, since: float) -> list[Step]:
    steps: list[Step] = []
    for db in sorted(mesh_dir.glob("*.db")):
        for event_type, created_at, published_at in rows(db, _OUTBOX, (order_id,)):
            acked = f" (PubAck {seconds(published_at) - since:.3f})" if published_at else " (not published)"
            steps.append(Step(seconds(created_at), db.stem, f"+{event_type.rsplit('.', 1)[-1]}{acked}"))
        for hop, outcome, created_at, latency_ms in rows(db, _HOPS, (correlation_id,)):
            started = seconds(created_at) - latency_ms / 1000
            steps.append(Step(started, db.stem, f"handled {hop}: {outcome}, {latency_ms:.1f} ms"))
    return steps


def _webhook_steps(mesh_dir: Path, order_id: str, order_gid: str) -> list[Step]:
    """The adapters' webhook inboxes: when Shopify's `orders/*` and the 3PL's notices about the
    order were stored (then answered) and when they were worked."""
    queries = {
        "shopify-adapter": (
            "SELECT topic, received_at, processed_at FROM webhook_delivery WHERE order_gid = ?",
            order_gid,
        ),
        "tpl-adapter": (
            "SELECT topic, received_at, processed_at FROM tpl_webhook_delivery"
            " WHERE CAST(body AS TEXT) LIKE ?",
            f"%{order_id}:%",
        ),
    }
    steps: list[Step] = []
    for service, (query, value) in queries.items():
        for topic, received_at, processed_at in rows(mesh_dir / f"{service}.db", query, (value,)):
            steps.append(Step(seconds(received_at), service, f"webhook {topic} stored"))
            if processed_at:
                steps.append(Step(seconds(processed_at), service, f"webhook {topic} worked"))
    return steps


def _order_ids(mesh_dir: Path) -> dict[str, tuple[str, str]]:
    """Shopify order gid → (the mesh's order id, its correlation id), from the orders service."""
    summaries = rows(
        mesh_dir / "orders.db", "SELECT order_id, channel_order_id, snapshot_json FROM order_summary"
    )
    return {
        gid: (order_id, json.loads(snapshot).get("correlation_id", ""))
        for order_id, gid, snapshot in summaries
    }


def timelines(run_dir: Path, names: list[str] | None = None, last: int = 3) -> dict[str, list[Step]]:
    """Order name → its steps, times in seconds after the first checkout; by default the `last`
    orders done."""
    records = json.loads((run_dir / "records.json").read_text())
    since = records["since"]
    if not names:
        done = done_orders(records, since)
        names = sorted(done, key=done.__getitem__)[-last:]
    ids = _order_ids(run_dir / "mesh")
    gids = {o["name"]: f"gid://shopify/Order/{o['id']}" for o in records["shopify"]["orders"]}
    found: dict[str, list[Step]] = {}
    for name in names:
        steps = _stand_in_steps(records, name)
        if gids.get(name) in ids:
            order_id, correlation_id = ids[gids[name]]
            steps += _mesh_steps(run_dir / "mesh", order_id, correlation_id, since)
            steps += _webhook_steps(run_dir / "mesh", order_id, gids[name])
        found[name] = sorted(Step(step.at - since, step.who, step.what) for step in steps)
    return found


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    try:
        found = timelines(Path(sys.argv[1]), sys.argv[2:])
    except LookupError as missing:
        sys.exit(str(missing))
    for name, steps in found.items():
        print(name)
        for step in steps:
            print(f"  {step.at:7.3f}  {step.who:17} {step.what}")


if __name__ == "__main__":
    main()
