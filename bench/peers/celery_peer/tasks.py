"""Peer 2, Celery on Redis: webhooks are enqueued, tasks call the ERP, the 3PL and Shopify.

- `accept_order`: look the order up in Business Central by name, create it if absent, then
  enqueue `release_order`;
- `release_order`: create the 3PL order (its reference id makes a repeat harmless);
- `fulfil_parcel`: create the Shopify fulfillment with the parcel's tracking (skipped if already
  there), then enqueue `invoice_parcel`;
- `invoice_parcel`: ship and invoice the parcel's units in Business Central;
- `sync_inventory` (beat, every `PEER_INVENTORY_EVERY_S`): copy the 3PL's stock to Shopify.

Each call that may fail for a while retries with Celery's `autoretry_for` and exponential
back-off with jitter; a business refusal is logged and dropped. The broker is `CELERY_BROKER_URL`
(the bench starts its own redis-server). Worker: `celery -A bench.peers.celery_peer.tasks worker -B`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery

from bench.peers.clients import Refused, Systems, TryLater, shipped_units

app = Celery("peer", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_acks_late=True,  # a task a dead worker held is run again, not lost
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    beat_schedule={
        "sync-inventory": {
            "task": "bench.peers.celery_peer.tasks.sync_inventory",
            "schedule": float(os.environ.get("PEER_INVENTORY_EVERY_S", "2")),
        }
    },
)
log = logging.getLogger("peer.celery")
RETRY = {
    "autoretry_for": (TryLater,),
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 12,
}
_systems: Systems | None = None


def systems() -> Systems:
    """One set of clients per worker process."""
    global _systems
    if _systems is None:
        _systems = Systems(dict(os.environ))
    return _systems


@app.task(**RETRY)
def accept_order(name: str, bc_order: dict[str, Any], tpl_order: dict[str, Any]) -> None:
    try:
        if systems().bc.sales_order(name) is None:
            systems().bc.create_sales_order(bc_order)
    except Refused as exc:
        log.error("order %s refused by the ERP: %s", name, exc)
        return
    release_order.delay(tpl_order)


@app.task(**RETRY)
def release_order(tpl_order: dict[str, Any]) -> None:
    try:
        systems().tpl.create_order(tpl_order)
    except Refused as exc:
        log.error("order %s refused by the 3PL: %s", tpl_order["order_number"], exc)


@app.task(**RETRY)
def fulfil_parcel(shipment: dict[str, Any]) -> None:
    tracking = shipment.get("tracking") or {}
    units = shipped_units(shipment)
    try:
        systems().shopify.fulfill(
            f"gid://shopify/Order/{shipment['reference_id']}",
            units,
            tracking.get("carrier", "UPS"),
            tracking.get("tracking_number", ""),
        )
    except Refused as exc:
        log.error("shipment %s refused by Shopify: %s", shipment.get("id"), exc)
    invoice_parcel.delay((shipment.get("order") or {}).get("order_number", ""), units)


@app.task(**RETRY)
def invoice_parcel(name: str, units: dict[str, int]) -> None:
    try:
        order = systems().bc.sales_order(name)
        if order is not None:  # BC deletes an order once it is fully invoiced
            systems().bc.ship_and_invoice(order, units)
    except Refused as exc:
        log.error("invoice of %s refused by the ERP: %s", name, exc)


@app.task(**RETRY)
def sync_inventory() -> None:
    try:
        systems().sync_inventory()
    except Refused as exc:
        log.error("inventory sync refused: %s", exc)
