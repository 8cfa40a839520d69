"""Figures of one run, read from the stand-ins' own records, the same way for every system.

- Shopify `GET /_sandbox/records`: each order's creation time and lines, each fulfillment with its
  time, tracking numbers and units, each inventory adjustment with its time and quantities;
  `GET /_sandbox/deliveries`: every webhook attempt with its duration (send to answer).
- Business Central `GET /_sandbox/counts` (`created_at` of each sales order per external document
  number) and `GET /_sandbox/state` (open sales orders; posted invoices by external document number).
- The 3PL `GET /_sandbox/counts` (orders created per reference id) and `GET /_sandbox/state`
  (orders, shipments, stock).

An order is *done* (order to cash) when Shopify shows all its units fulfilled with tracking on
every fulfillment, and Business Central has invoiced it in full: an invoice carries its name and
no open sales order does (BC deletes an order once it is fully shipped and invoiced). Its done
time is the later of its last fulfillment and its last invoice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _bc_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def collect(http: httpx.AsyncClient, urls: dict[str, str]) -> dict[str, Any]:
    """Every record the figures need, read once after the run settled."""
    shopify, bc, tpl = urls["shopify"], urls["business-central"], urls["tpl"]
    return {
        "shopify": (await http.get(f"{shopify}/_sandbox/records")).json(),
        "deliveries": (await http.get(f"{shopify}/_sandbox/deliveries")).json()["deliveries"],
        "shopify_counts": (await http.get(f"{shopify}/_sandbox/counts")).json(),
        "bc_counts": (await http.get(f"{bc}/_sandbox/counts")).json(),
        "bc_state": (await http.get(f"{bc}/_sandbox/state")).json(),
        "tpl_counts": (await http.get(f"{tpl}/_sandbox/counts")).json(),
        "tpl_state": (await http.get(f"{tpl}/_sandbox/state")).json(),
    }


def accepted_orders(records: dict[str, Any], since: float) -> set[str]:
    """Names of the orders placed since `since` that have a sales order in Business Central."""
    placed = {o["name"] for o in records["shopify"]["orders"] if (o["created_at"] or 0) >= since}
    return placed & set(records["bc_counts"].get("created_at", {}).get("salesOrders", {}))


def answered_orders(records: dict[str, Any], since: float, webhook_url: str) -> set[str]:
    """Event ids of the orders/create webhooks sent to `webhook_url` since `since` that it
    answered with a 2xx (the receiver floor's "done")."""
    return {
        d["event_id"]
        for d in records["deliveries"]
        if d["topic"] == "orders/create"
        and d["uri"] == webhook_url
        and d["outcome"] == "delivered"
        and datetime.fromisoformat(d["at"]).timestamp() >= since
    }


def done_orders(records: dict[str, Any], since: float) -> dict[str, float]:
    """Name → done time of each order placed since `since` that is done (see the module doc)."""
    open_names = {o.get("externalDocumentNumber") for o in records["bc_state"].get("salesOrders", [])}
    invoiced_at: dict[str, float] = {}
    for invoice in records["bc_state"].get("salesInvoices", []):
        name = invoice.get("externalDocumentNumber")
        at = _bc_time(invoice.get("lastModifiedDateTime"))
        if name and at is not None:
            invoiced_at[name] = max(at, invoiced_at.get(name, 0.0))
    done: dict[str, float] = {}
    for order in records["shopify"]["orders"]:
        if (order["created_at"] or 0) < since or order["cancelled"]:
            continue
        wanted = sum(line["quantity"] for line in order["lines"])
        fulfilled = sum(sum(f["units"].values()) for f in order["fulfillments"])
        tracked = all(f["tracking_numbers"] for f in order["fulfillments"])
        name = order["name"]
        if fulfilled >= wanted and tracked and name in invoiced_at and name not in open_names:
            done[name] = max([invoiced_at[name], *(f["created_at"] for f in order["fulfillments"])])
    return done


def _duplicates(counts: dict[str, Any], kind: str) -> tuple[int, int]:
    created = counts.get("created", {}).get(kind, {})
    return sum(created.values()), sum(n - 1 for n in created.values() if n > 1)


def compute(
    records: dict[str, Any],
    *,
    since: float,
    webhook_url: str,
    hot_stock: dict[str, int],
    restocks: list[dict[str, Any]],
    lost_unless: str = "done",
) -> dict[str, Any]:
    """The figures of one system in one scenario.

    Args:
        records: what `collect` read.
        since: Unix time just before the first order was placed.
        webhook_url: the system's orders/create endpoint (its deliveries are the ones measured).
        hot_stock: hot SKU → units the 3PL held of it when the load began.
        restocks: the bench's 3PL cycle counts: `{"sku", "location", "on_hand", "at"}`.
        lost_unless: "done" (an order not done by the deadline is lost) or "accepted" (not in
            the ERP by the deadline: the burst, whose 2,000 orders the 3PL's 150 requests per
            minute cannot take in any system's deadline).
    """
    placed = [o for o in records["shopify"]["orders"] if (o["created_at"] or 0) >= since]
    created_of = {o["name"]: o["created_at"] for o in placed}
    done = done_orders(records, since)
    window = (max(done.values()) - since) if done else None

    # Acceptance: Shopify's order creation → Business Central's sales order creation.
    bc_created = records["bc_counts"].get("created_at", {}).get("salesOrders", {})
    # Each placed order's first ERP sales order: when it was created.
    accepted = {name: times[0] for name, times in bc_created.items() if name in created_of}
    acceptance = [at - created_of[name] for name, at in accepted.items()]
    accepted_names = set(accepted)
    accepted_at = list(accepted.values())
    # The rate the stand-in's checkout really created orders at: on a busy box it lags `--rate`.
    created = sorted(created_of.values())
    placed_span = created[-1] - created[0] if len(created) > 1 else 0.0

    # Webhook acknowledgement: each attempt to deliver orders/create to this system, as timed by
    # the Shopify stand-in from sending it to the answer (a timed-out attempt counts its 5 s).
    attempts = [
        d
        for d in records["deliveries"]
        if d["topic"] == "orders/create"
        and d["uri"] == webhook_url
        and d["outcome"] in ("delivered", "failed")
    ]
    ack = [d["duration_ms"] / 1000 for d in attempts]
    failed_attempts = sum(1 for d in attempts if d["outcome"] == "failed")

    # Duplicates. Fulfillments: a real duplicate is a second fulfillment carrying a tracking
    # number the order already has; two parcels of one fulfillment order are two shipments.
    duplicate_fulfillments = 0
    for order in placed:
        seen: set[str] = set()
        for fulfillment in order["fulfillments"]:
            numbers = set(fulfillment["tracking_numbers"])
            if numbers & seen:
                duplicate_fulfillments += 1
            seen |= numbers
    created_erp, duplicate_erp = _duplicates(records["bc_counts"], "salesOrders")
    created_tpl, duplicate_tpl = _duplicates(records["tpl_counts"], "orders")

    # Oversold: units of a hot SKU Shopify accepted beyond what the 3PL held when the load began.
    sold: dict[str, int] = {}
    for order in placed:
        for line in order["lines"]:
            if line["sku"] in hot_stock:
                sold[line["sku"]] = sold.get(line["sku"], 0) + line["quantity"]
    shipped: dict[str, int] = {}
    for order in records["tpl_state"].get("orders", []):
        for shipment in order.get("shipments", []):
            if shipment.get("tracking"):
                for product in shipment.get("products", []):
                    if product["sku"] in hot_stock:
                        shipped[product["sku"]] = shipped.get(product["sku"], 0) + int(product["quantity"])
    oversold = sum(max(0, sold.get(sku, 0) - stock) for sku, stock in hot_stock.items())

    # Inventory update lag: a 3PL cycle count → the first Shopify adjustment of that SKU at that
    # location afterwards that shows a quantity (the bench restocks a SKU nobody buys).
    lags = []
    adjustments = records["shopify"]["inventory_adjustments"]
    for restock in restocks:
        for group in adjustments:
            if (group["created_at"] or 0) < restock["at"]:
                continue
            if any(
                c["sku"] == restock["sku"]
                and c["location"] == restock["location"]
                and c["name"] == "available"
                for c in group["changes"]
            ):
                lags.append(group["created_at"] - restock["at"])
                break

    return {
        "orders_placed": len(placed),
        "orders_done": len(done),
        "lost_orders": len(placed) - (len(done) if lost_unless == "done" else len(accepted_names)),
        "lost_means": f"not {lost_unless} by the deadline",
        "orders_placed_per_s": (len(created) - 1) / placed_span if placed_span > 0 else None,
        # Until 99 % of the ERP's sales orders existed: one late redelivery does not stretch it.
        "acceptance_window_s": (percentile(accepted_at, 0.99) - since) if accepted_at else None,
        "order_to_cash_window_s": window,
        "order_to_cash_orders_per_s": len(done) / window if window else None,
        "acceptance_p50_s": percentile(acceptance, 0.50),
        "acceptance_p99_s": percentile(acceptance, 0.99),
        "orders_accepted_by_erp": len(acceptance),
        "webhook_ack_p50_s": percentile(ack, 0.50),
        "webhook_ack_p99_s": percentile(ack, 0.99),
        "webhook_ack_max_s": max(ack, default=None),
        "webhook_attempts": len(attempts),
        "webhook_failed_attempts": failed_attempts,
        "inventory_lag_p50_s": percentile(lags, 0.50),
        "inventory_lag_p99_s": percentile(lags, 0.99),
        "inventory_restocks_seen": f"{len(lags)}/{len(restocks)}",
        "created_erp_sales_orders": created_erp,
        "duplicate_erp_sales_orders": duplicate_erp,
        "created_tpl_orders": created_tpl,
        "duplicate_tpl_orders": duplicate_tpl,
        "shopify_fulfillments": sum(len(o["fulfillments"]) for o in placed),
        "duplicate_shopify_fulfillments": duplicate_fulfillments,
        "hot_stock": hot_stock,
        "hot_units_sold": sold,
        "hot_units_shipped": shipped,
        "oversold_units": oversold,
    }
