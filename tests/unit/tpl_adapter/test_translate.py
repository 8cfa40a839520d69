"""Pure translations of the tpl-adapter, against payloads the 3PL stand-in produces."""

from __future__ import annotations

import time

from sandbox.tpl.webhook import sign
from services.tpl_adapter.translate.release import Release, ReleaseLine
from services.tpl_adapter.translate.shipment import allocate_lines, notice_from_webhook
from services.tpl_adapter.webhooks.signature import verify

RELEASE = Release(
    "ord-1-EAST", "ord-1", "EAST", (ReleaseLine("L1", "SKU-1001", 2), ReleaseLine("L2", "SKU-1001", 1))
)


def shipped_payload(shipment_id: int, quantity: int, others: list[dict]) -> dict:
    products = [{"id": 5001, "reference_id": "SKU-1001", "sku": "SKU-1001", "quantity": quantity}]
    return {
        "topic": "order.shipped",
        "id": shipment_id,
        "order_id": 100001,
        "reference_id": "ord-1-EAST",
        "status": "Completed",
        "location": {"id": 1, "name": "EAST"},
        "tracking": {
            "carrier": "UPS",
            "carrier_service": "Ground",
            "tracking_number": f"1ZTRACK{shipment_id}",
            "tracking_url": f"https://www.ups.com/track?tracknum=1ZTRACK{shipment_id}",
            "shipping_date": "2026-07-01T12:00:00.000Z",
        },
        "products": products,
        "parent_cartons": [
            {
                "type": "Box",
                "barcode": f"PKG-{shipment_id}",
                "tracking_number": f"1ZTRACK{shipment_id}",
                "products": products,
            }
        ],
        "order": {
            "id": 100001,
            "shipments": [{"id": shipment_id, "status": "Completed", "products": products}, *others],
        },
    }


def test_a_sku_on_two_lines_fills_them_in_line_order():
    lines = allocate_lines(RELEASE, [("SKU-1001", 3)])

    assert [(x.line_id, x.quantity) for x in lines] == [("L1", 2), ("L2", 1)]


def test_the_first_parcel_of_a_split_shipment_is_partial_and_carries_its_own_tracking():
    payload = shipped_payload(200001, 2, [{"id": 200002, "status": "Processing", "products": []}])

    notice = notice_from_webhook(payload, RELEASE)

    assert notice.partial
    assert notice.warehouse_shipment.id == "200001"
    assert notice.packages[0].tracking_number == "1ZTRACK200001"
    assert notice.packages[0].service_level == "GROUND"
    assert notice.shipped_at.ToJsonString() == "2026-07-01T12:00:00Z"


def test_a_shipment_covering_the_whole_release_is_not_partial():
    notice = notice_from_webhook(shipped_payload(200001, 3, []), RELEASE)

    assert not notice.partial


def test_a_signature_made_as_the_3pl_signs_verifies_and_a_tampered_body_does_not():
    secret, body, now = "whsec_abc123", b'{"id": 1}', str(int(time.time()))
    header = sign(secret, "msg_1", now, body)

    assert verify([secret], "msg_1", now, header, body, now=float(now))
    assert not verify([secret], "msg_1", now, header, body + b" ", now=float(now))
    assert not verify(["whsec_other"], "msg_1", now, header, body, now=float(now))


def test_an_old_timestamp_is_refused_even_with_a_good_signature():
    secret, body = "whsec_abc123", b"{}"
    header = sign(secret, "msg_1", "1000", body)

    assert not verify([secret], "msg_1", "1000", header, body, now=time.time())
