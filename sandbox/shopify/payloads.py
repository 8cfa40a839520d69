"""Webhook bodies shaped like Shopify's (REST-style snake_case, API 2026-04).

Each builder returns the JSON object Shopify POSTs for a topic, with the same keys as Shopify's
documented example payloads (``fixtures/real/shopify-webhooks``). Ids are exact 64-bit integers.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandbox.shopify.model import (
    Fulfillment,
    FulfillmentHold,
    FulfillmentOrder,
    InventoryLevel,
    LineItem,
    Order,
    Product,
    Refund,
    Return,
    ReverseFulfillmentOrder,
    Transaction,
    gid,
)

if TYPE_CHECKING:
    from sandbox.shopify.state import Store

_ZERO = Decimal("0.00")


def money(amount: Decimal) -> str:
    """Shopify's money string: two decimals."""
    return f"{amount.quantize(Decimal('0.01'))}"


def money_set(amount: Decimal, currency: str = "USD") -> dict[str, Any]:
    """``{shop_money, presentment_money}`` with the same amount."""
    one = {"amount": money(amount), "currency_code": currency}
    return {"shop_money": dict(one), "presentment_money": dict(one)}


def _address(address: dict) -> dict[str, Any]:
    first, last = address.get("first_name"), address.get("last_name")
    return {
        "first_name": first,
        "address1": address.get("address1"),
        "phone": address.get("phone"),
        "city": address.get("city"),
        "zip": address.get("zip"),
        "province": address.get("province"),
        "country": address.get("country", "United States"),
        "last_name": last,
        "address2": address.get("address2"),
        "company": address.get("company"),
        "latitude": None,
        "longitude": None,
        "name": address.get("name") or f"{first or ''} {last or ''}".strip(),
        "country_code": address.get("country_code", "US"),
        "province_code": address.get("province_code"),
    }


def _customer(store: Store, order: Order) -> dict[str, Any] | None:
    customer = store.customers.get(order.customer_id) if order.customer_id else None
    if customer is None:
        return None
    addr = customer.address
    return {
        "id": customer.id,
        "created_at": store.to_shop_time(customer.created_at),
        "updated_at": store.to_shop_time(customer.updated_at),
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "state": "disabled",
        "note": None,
        "verified_email": True,
        "multipass_identifier": None,
        "tax_exempt": False,
        "email": customer.email,
        "phone": customer.phone,
        "currency": "USD",
        "tax_exemptions": [],
        "admin_graphql_api_id": customer.gid,
        "default_address": {
            "id": customer.address_id,
            "customer_id": customer.id,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "company": addr.get("company"),
            "address1": addr.get("address1"),
            "address2": addr.get("address2"),
            "city": addr.get("city"),
            "province": addr.get("province"),
            "country": addr.get("country", "United States"),
            "zip": addr.get("zip"),
            "phone": addr.get("phone"),
            "name": customer.display_name,
            "province_code": addr.get("province_code"),
            "country_code": addr.get("country_code", "US"),
            "country_name": addr.get("country", "United States"),
            "default": True,
        },
    }


def _line_common(line: LineItem) -> dict[str, Any]:
    """The keys an order line carries in every payload (order, fulfillment, refund)."""
    return {
        "id": line.id,
        "admin_graphql_api_id": line.gid,
        "fulfillable_quantity": line.unfulfilled_quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": _line_fulfillment_status(line),
        "gift_card": False,
        "grams": line.grams,
        "name": line.title,
        "price": money(line.price),
        "price_set": money_set(line.price),
        "product_exists": line.product_id is not None,
        "product_id": line.product_id,
        "properties": [],
        "quantity": line.quantity,
        "requires_shipping": True,
        "sku": line.sku,
        "taxable": True,
        "title": line.title,
        "total_discount": money(_ZERO),
        "total_discount_set": money_set(_ZERO),
        "variant_id": line.variant_id,
        "variant_inventory_management": "shopify" if line.variant_id else None,
        "variant_title": line.variant_title,
        "vendor": line.vendor,
        "tax_lines": [],
        "duties": [],
        "discount_allocations": [],
    }


def _line_fulfillment_status(line: LineItem) -> str | None:
    if line.fulfilled_quantity == 0:
        return None
    return "fulfilled" if line.unfulfilled_quantity == 0 else "partial"


def _order_line(line: LineItem) -> dict[str, Any]:
    body = _line_common(line)
    body.update(
        {"attributed_staffs": [], "current_quantity": line.current_quantity, "sales_line_item_group_id": None}
    )
    return body


def _transaction(store: Store, tx: Transaction) -> dict[str, Any]:
    return {
        "id": tx.id,
        "order_id": tx.order_id,
        "kind": tx.kind.lower(),
        "gateway": tx.gateway,
        "status": tx.status.lower(),
        "message": None,
        "created_at": store.to_shop_time(tx.created_at),
        "test": tx.test,
        "authorization": None,
        "location_id": None,
        "user_id": None,
        "parent_id": tx.parent_id,
        "processed_at": store.to_shop_time(tx.created_at),
        "device_id": None,
        "error_code": None,
        "source_name": "web",
        "receipt": {},
        "amount": money(tx.amount),
        "currency": "USD",
        "payment_id": f"#{tx.order_id}.{tx.id % 1000}",
        "total_unsettled_set": {
            "presentment_money": {"amount": "0.0", "currency": "USD"},
            "shop_money": {"amount": "0.0", "currency": "USD"},
        },
        "manual_payment_gateway": False,
        "amount_rounding": None,
        "admin_graphql_api_id": tx.gid,
    }


def order(store: Store, o: Order) -> dict[str, Any]:
    """The ``orders/*`` body (create, updated, paid, cancelled, fulfilled, partially_fulfilled)."""
    subtotal, total = o.subtotal, o.total
    original_lines = sum((li.price * li.quantity for li in o.line_items), _ZERO)
    status = o.fulfillment_status
    return {
        "id": o.id,
        "admin_graphql_api_id": o.gid,
        "app_id": None,
        "browser_ip": "127.0.0.1",
        "buyer_accepts_marketing": False,
        "cancel_reason": o.cancel_reason.lower() if o.cancel_reason else None,
        "cancelled_at": store.to_shop_time(o.cancelled_at),
        "cart_token": None,
        "checkout_token": o.token[:16],
        "client_details": None,
        "closed_at": store.to_shop_time(o.closed_at),
        "confirmation_number": o.confirmation_number,
        "confirmed": True,
        "contact_email": o.email,
        "created_at": store.to_shop_time(o.created_at),
        "currency": "USD",
        "current_shipping_price_set": money_set(o.shipping_price if o.cancelled_at is None else _ZERO),
        "current_subtotal_price": money(subtotal),
        "current_subtotal_price_set": money_set(subtotal),
        "current_total_additional_fees_set": None,
        "current_total_discounts": money(_ZERO),
        "current_total_discounts_set": money_set(_ZERO),
        "current_total_duties_set": None,
        "current_total_price": money(total),
        "current_total_price_set": money_set(total),
        "current_total_tax": money(_ZERO),
        "current_total_tax_set": money_set(_ZERO),
        "customer_locale": "en",
        "device_id": None,
        "discount_codes": [],
        "duties_included": False,
        "email": o.email,
        "estimated_taxes": False,
        "financial_status": o.financial_status.lower(),
        "fulfillment_status": {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(status),
        "landing_site": None,
        "landing_site_ref": None,
        "location_id": None,
        "merchant_business_entity_id": f"MTU{store.shop.id % 10**9}",
        "merchant_of_record_app_id": None,
        "name": o.name,
        "note": o.note,
        "note_attributes": [],
        "number": o.number - 1000,
        "order_number": o.number,
        "order_status_url": f"https://{store.shop_domain}/{store.shop.id}/orders/{o.token}/authenticate?key=sandbox",
        "original_total_additional_fees_set": None,
        "original_total_duties_set": None,
        "payment_gateway_names": ["bogus"],
        "phone": None,
        "po_number": None,
        "presentment_currency": "USD",
        "processed_at": store.to_shop_time(o.created_at),
        "reference": None,
        "referring_site": None,
        "source_identifier": None,
        "source_name": "web",
        "source_url": None,
        "subtotal_price": money(subtotal),
        "subtotal_price_set": money_set(subtotal),
        "tags": ", ".join(o.tags),
        "tax_exempt": False,
        "tax_lines": [],
        "taxes_included": False,
        "test": o.test,
        "token": o.token,
        "total_cash_rounding_payment_adjustment_set": money_set(_ZERO),
        "total_cash_rounding_refund_adjustment_set": money_set(_ZERO),
        "total_discounts": money(_ZERO),
        "total_discounts_set": money_set(_ZERO),
        "total_line_items_price": money(original_lines),
        "total_line_items_price_set": money_set(original_lines),
        "total_outstanding": money(_ZERO),
        "total_price": money(total),
        "total_price_set": money_set(total),
        "total_shipping_price_set": money_set(o.shipping_price),
        "total_tax": money(_ZERO),
        "total_tax_set": money_set(_ZERO),
        "total_tip_received": money(_ZERO),
        "total_weight": sum(li.grams * li.current_quantity for li in o.line_items),
        "updated_at": store.to_shop_time(o.updated_at),
        "user_id": None,
        "billing_address": _address(o.billing_address),
        "customer": _customer(store, o),
        "discount_applications": [],
        "fulfillments": [fulfillment(store, store.fulfillments[f]) for f in o.fulfillment_ids],
        "line_items": [_order_line(li) for li in o.line_items],
        "payment_terms": None,
        "refunds": [refund(store, store.refunds[r]) for r in o.refund_ids],
        "shipping_address": _address(o.shipping_address),
        "shipping_lines": [
            {
                "id": o.shipping_line_id,
                "carrier_identifier": None,
                "code": "Standard",
                "current_discounted_price_set": money_set(o.shipping_price),
                "discounted_price": money(o.shipping_price),
                "discounted_price_set": money_set(o.shipping_price),
                "is_removed": False,
                "phone": None,
                "price": money(o.shipping_price),
                "price_set": money_set(o.shipping_price),
                "requested_fulfillment_service_id": None,
                "source": "shopify",
                "title": "Standard",
                "tax_lines": [],
                "discount_allocations": [],
            }
        ],
        "returns": [
            {
                "id": store.returns[r].id,
                "admin_graphql_api_id": store.returns[r].gid,
                "status": store.returns[r].status.lower(),
            }
            for r in o.return_ids
        ],
        "line_item_groups": [],
    }


def fulfillment(store: Store, f: Fulfillment) -> dict[str, Any]:
    """The ``fulfillments/create`` body (also nested in order bodies)."""
    o = store.orders[f.order_id]
    first = f.tracking[0] if f.tracking else None
    lines = []
    for fl in f.line_items:
        line = store.line_item(o, fl.line_item_id)
        if line is not None:
            body = _line_common(line)
            body["quantity"] = fl.quantity
            lines.append(body)
    return {
        "id": f.id,
        "order_id": f.order_id,
        "status": f.status.lower(),
        "created_at": store.to_shop_time(f.created_at),
        "service": "manual",
        "updated_at": store.to_shop_time(f.updated_at),
        "tracking_company": first.company if first else None,
        "shipment_status": f.shipment_status,
        "location_id": f.location_id,
        "origin_address": None,
        "email": o.email,
        "destination": _address(o.shipping_address),
        "line_items": lines,
        "tracking_number": first.number if first else None,
        "tracking_numbers": [t.number for t in f.tracking if t.number],
        "tracking_url": first.url if first else None,
        "tracking_urls": [t.url for t in f.tracking if t.url],
        "receipt": {},
        "name": f.name,
        "admin_graphql_api_id": f.gid,
    }


def refund(store: Store, r: Refund) -> dict[str, Any]:
    """The ``refunds/create`` body (also nested in order bodies)."""
    o = store.orders[r.order_id]
    lines = []
    for rl in r.line_items:
        line = store.line_item(o, rl.line_item_id)
        if line is None:
            continue
        lines.append(
            {
                "id": rl.id,
                "quantity": rl.quantity,
                "line_item_id": rl.line_item_id,
                "location_id": rl.location_id,
                "restock_type": rl.restock_type.lower(),
                "subtotal": float(rl.subtotal),
                "total_tax": 0,
                "subtotal_set": money_set(rl.subtotal),
                "total_tax_set": money_set(_ZERO),
                "line_item": _line_common(line),
            }
        )
    return {
        "id": r.id,
        "order_id": r.order_id,
        "created_at": store.to_shop_time(r.created_at),
        "note": r.note,
        "user_id": None,
        "processed_at": store.to_shop_time(r.created_at),
        "duties": [],
        "total_duties_set": money_set(_ZERO),
        "return": None
        if r.return_id is None
        else {"id": r.return_id, "admin_graphql_api_id": gid("Return", r.return_id)},
        "restock": any(rl.restock_type != "NO_RESTOCK" for rl in r.line_items),
        "refund_shipping_lines": []
        if not r.shipping_amount
        else [
            {
                "id": o.shipping_line_id,
                "shipping_line_id": o.shipping_line_id,
                "subtotal_amount_set": money_set(r.shipping_amount),
            }
        ],
        "admin_graphql_api_id": r.gid,
        "order_adjustments": [],
        "refund_line_items": lines,
        "transactions": [_transaction(store, tx) for tx in r.transactions],
    }


def return_(store: Store, ret: Return) -> dict[str, Any]:
    """The ``returns/request``, ``returns/approve`` and ``returns/process`` body."""
    o = store.orders[ret.order_id]
    return {
        "id": ret.id,
        "admin_graphql_api_id": ret.gid,
        "status": ret.status.lower(),
        "order": {"id": o.id, "admin_graphql_api_id": o.gid},
        "total_return_line_items": len(ret.line_items),
        "name": ret.name,
        "return_line_items": [
            {
                "id": rl.id,
                "admin_graphql_api_id": rl.gid,
                "fulfillment_line_item": {
                    "id": rl.fulfillment_line_item_id,
                    "line_item": {
                        "id": rl.line_item_id,
                        "admin_graphql_api_id": gid("LineItem", rl.line_item_id),
                    },
                    "admin_graphql_api_id": gid("FulfillmentLineItem", rl.fulfillment_line_item_id),
                },
                "quantity": rl.quantity,
                "return_reason": rl.return_reason.lower(),
                "return_reason_note": rl.return_reason_note,
                "customer_note": None,
            }
            for rl in ret.line_items
        ],
        "return_shipping_fees": [],
        "exchange_line_items": [],
        "total_exchange_line_items": 0,
    }


def return_closed(store: Store, ret: Return) -> dict[str, Any]:
    """The ``returns/close`` body."""
    return {"id": ret.id, "admin_graphql_api_id": ret.gid, "order_id": ret.order_id, "status": "closed"}


def disposal(store: Store, rfo: ReverseFulfillmentOrder) -> dict[str, Any]:
    """The ``reverse_fulfillment_orders/dispose`` body."""
    dispositions = [
        {
            "reverse_fulfillment_order_line_item": {"id": line.id, "admin_graphql_api_id": line.gid},
            "reverse_delivery_line_item": None,
            "type": d.type.lower(),
            "location": None
            if d.location_id is None
            else {"id": d.location_id, "admin_graphql_api_id": gid("Location", d.location_id)},
            "quantity": d.quantity,
        }
        for line in rfo.line_items
        for d in line.dispositions
    ]
    return {
        "id": rfo.id,
        "admin_graphql_api_id": rfo.gid,
        "dispositions": dispositions,
        "total_dispositions": len(dispositions),
    }


def order_edit(store: Store, o: Order, edit: dict[str, Any]) -> dict[str, Any]:
    """The ``orders/edited`` body."""
    return {
        "order_edit": {
            "id": edit["id"],
            "app_id": None,
            "created_at": store.to_shop_time(edit["created_at"]),
            "committed_at": store.to_shop_time(edit["created_at"]),
            "notify_customer": False,
            "order_id": o.id,
            "staff_note": "",
            "user_id": None,
            "line_items": {"additions": edit["additions"], "removals": edit["removals"]},
            "discounts": {"line_item": {"additions": [], "removals": []}},
            "shipping_lines": {"additions": [], "removals": []},
        }
    }


def inventory_level(store: Store, level: InventoryLevel) -> dict[str, Any]:
    """The ``inventory_levels/update`` body (2024-04 documented shape)."""
    return {
        "inventory_item_id": level.item_id,
        "location_id": level.location_id,
        "available": level.available,
        "updated_at": store.to_shop_time(level.updated_at),
        "admin_graphql_api_id": level.gid,
    }


def fulfillment_order_hold(store: Store, fo: FulfillmentOrder, hold: FulfillmentHold) -> dict[str, Any]:
    """The ``fulfillment_orders/placed_on_hold`` body."""
    return {
        "fulfillment_order": {
            "id": fo.gid,
            "status": fo.status.lower(),
            "fulfillment_holds": [_hold(h) for h in fo.holds],
        },
        "remaining_fulfillment_order": None,
        "fulfillment_hold": _hold(hold),
    }


def fulfillment_order_released(store: Store, fo: FulfillmentOrder) -> dict[str, Any]:
    """The ``fulfillment_orders/hold_released`` body."""
    return {
        "fulfillment_order": {
            "id": fo.gid,
            "status": fo.status.lower(),
            "fulfillment_holds": [_hold(h) for h in fo.holds],
        }
    }


def _hold(h: FulfillmentHold) -> dict[str, Any]:
    return {"id": h.gid, "reason": h.reason.lower(), "reason_notes": h.reason_notes, "handle": h.handle}


def product(store: Store, p: Product) -> dict[str, Any]:
    """The ``products/create`` and ``products/update`` body, with the documented example's key set.

    The stand-in has no descriptions, media, tags or options beyond the default variant title, so
    those keys carry Shopify's empty values.
    """
    variants = [store.variants[x] for x in p.variant_ids]

    def quantity(v: Any) -> int:
        return sum(lv.available for (item, _), lv in store.levels.items() if item == v.inventory_item_id)

    return {
        "id": p.id,
        "admin_graphql_api_id": p.gid,
        "title": p.title,
        "body_html": "",
        "handle": p.handle,
        "vendor": p.vendor,
        "product_type": p.product_type,
        "status": p.status.lower(),
        "created_at": store.to_shop_time(p.created_at),
        "updated_at": store.to_shop_time(p.updated_at),
        "published_at": store.to_shop_time(p.created_at) if p.status == "ACTIVE" else None,
        "published_scope": "web",
        "template_suffix": None,
        "tags": "",
        "category": None,
        "has_variants_that_requires_components": False,
        "options": [],
        "images": [],
        "image": None,
        "media": [],
        "variants": [
            {
                "id": v.id,
                "admin_graphql_api_id": v.gid,
                "product_id": p.id,
                "sku": v.sku,
                "barcode": v.barcode,
                "price": money(v.price),
                "compare_at_price": None,
                "position": position,
                "taxable": True,
                "inventory_item_id": v.inventory_item_id,
                "inventory_policy": v.inventory_policy.lower(),
                "inventory_quantity": quantity(v),
                "old_inventory_quantity": quantity(v),
                "title": v.title,
                "option1": v.title,
                "option2": None,
                "option3": None,
                "image_id": None,
                "created_at": store.to_shop_time(v.created_at),
                "updated_at": store.to_shop_time(v.updated_at),
            }
            for position, v in enumerate(variants, start=1)
        ],
        "variant_gids": [
            {"admin_graphql_api_id": v.gid, "updated_at": store.to_shop_time(v.updated_at)} for v in variants
        ],
    }
