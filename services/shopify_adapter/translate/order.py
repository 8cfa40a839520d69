"""Shopify orders → canonical `retail.orders.v1.SalesOrder`: webhook bodies and Admin GraphQL nodes.

Pure functions. Ids stay exact: bodies are parsed by `parse_body` (Python's json keeps integers
exact; floats become Decimal) and every id is taken from its GID (`admin_graphql_api_id`), which is
a string and never loses precision, even where a re-serialised body rounded the numeric `id`.
Data minimisation (S4): the customer becomes a reference (its GID only); the shipping address is
kept because fulfilment needs it; emails, customer names and phones outside the address are dropped.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from retail.common.v1 import common_pb2
from retail.orders.v1 import orders_pb2

SHOPIFY = common_pb2.SOURCE_SYSTEM_SHOPIFY
_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "XPF"})
_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
_CHANNEL = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_GID = re.compile(r"^gid://shopify/(?P<kind>\w+)/(?P<id>\d+)$")

_PAYMENT = {
    "pending": orders_pb2.PAYMENT_STATUS_PENDING,
    "partially_paid": orders_pb2.PAYMENT_STATUS_PENDING,
    "authorized": orders_pb2.PAYMENT_STATUS_AUTHORIZED,
    "paid": orders_pb2.PAYMENT_STATUS_PAID,
    "partially_refunded": orders_pb2.PAYMENT_STATUS_PARTIALLY_REFUNDED,
    "refunded": orders_pb2.PAYMENT_STATUS_REFUNDED,
    "voided": orders_pb2.PAYMENT_STATUS_VOIDED,
    "expired": orders_pb2.PAYMENT_STATUS_VOIDED,
}

_CANCEL_REASON = {
    "customer": orders_pb2.CANCELLATION_REASON_CUSTOMER_REQUEST,
    "fraud": orders_pb2.CANCELLATION_REASON_FRAUD,
    "inventory": orders_pb2.CANCELLATION_REASON_INVENTORY,
    "declined": orders_pb2.CANCELLATION_REASON_PAYMENT_DECLINED,
}


class TranslationError(ValueError):
    """A Shopify payload cannot become a canonical message (a business failure: fix data, replay)."""


class MalformedBody(ValueError):
    """A webhook body that is not a JSON object."""


def parse_body(raw: bytes) -> dict[str, Any]:
    """Parse a webhook body: integers stay exact, decimals become `Decimal`, never float.

    Raises:
        MalformedBody: not UTF-8 JSON, or not an object.
    """
    try:
        value = json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MalformedBody(f"body is not JSON: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise MalformedBody("body is not a JSON object")
    return value


def numeric_id(gid: str) -> str:
    """The numeric part of a Shopify GID (`gid://shopify/Order/820982911946154508` → `820982911946154508`)."""
    match = _GID.match(gid or "")
    if match is None:
        raise TranslationError(f"not a Shopify GID: {gid!r}")
    return match["id"]


def gid_of(payload: dict[str, Any], kind: str) -> str:
    """The exact GID of a REST-style object: `admin_graphql_api_id`, else built from an integer `id`."""
    gid = payload.get("admin_graphql_api_id")
    if isinstance(gid, str) and _GID.match(gid):
        return gid
    raw = payload.get("id")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return f"gid://shopify/{kind}/{raw}"
    raise TranslationError(f"{kind} without an exact id")


def utc_text(value: str) -> str:
    """An ISO 8601 time in any offset as UTC `YYYY-MM-DDTHH:MM:SSZ` (whole seconds), the key form."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError, AttributeError):
        raise TranslationError(f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(value: str | None) -> Timestamp | None:
    if not value:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(utc_text(value).replace("Z", "+00:00")))
    return stamp


def version_key(order_gid: str, updated_at: str) -> str:
    """The IngestOrder request_id of one version of one order, the same from a webhook and a poll.

    A webhook and the reconciliation poll that both carry version `updated_at` of the order are one
    request to the orders service, so it ingests that version once.
    """
    return f"shopify:order:{numeric_id(order_gid)}@{utc_text(updated_at)}"


def money(amount: Any, currency: str) -> common_pb2.Money:
    """Shopify's decimal amount (string or Decimal) as integer minor units; never through float."""
    if amount is None or amount == "":
        amount = "0"
    if isinstance(amount, float):  # defensive: callers parse with parse_float=Decimal
        raise TranslationError("money given as a float")
    exponent = 0 if currency in _ZERO_DECIMAL_CURRENCIES else 2
    minor = Decimal(str(amount)).scaleb(exponent)
    if minor != minor.to_integral_value():
        raise TranslationError(f"amount {amount} has more precision than {currency} allows")
    return common_pb2.Money(minor_units=int(minor), currency=currency)


def _shop_amount(money_set: Any, fallback: Any, currency: str) -> common_pb2.Money:
    if isinstance(money_set, dict) and isinstance(money_set.get("shop_money"), dict):
        shop = money_set["shop_money"]
        return money(shop.get("amount"), shop.get("currency_code") or currency)
    return money(fallback, currency)


def _address(raw: Any, *, graphql: bool = False) -> common_pb2.Address | None:
    if not isinstance(raw, dict):
        return None
    lines = [
        str(raw.get(k)).strip() for k in ("address1", "address2") if raw.get(k) and str(raw.get(k)).strip()
    ]
    country = raw.get("countryCodeV2" if graphql else "country_code") or ""
    if not lines or not re.match(r"^[A-Z]{2}$", country):
        return None
    name = raw.get("name") or " ".join(
        p
        for p in (
            raw.get("firstName" if graphql else "first_name"),
            raw.get("lastName" if graphql else "last_name"),
        )
        if p
    )
    return common_pb2.Address(
        name=(name or "")[:255],
        company=(raw.get("company") or "")[:255],
        lines=[line[:255] for line in lines[:4]],
        city=(raw.get("city") or "")[:128],
        province_code=(raw.get("provinceCode" if graphql else "province_code") or "")[:8],
        postal_code=(raw.get("zip") or "")[:16],
        country_code=country,
        phone=(raw.get("phone") or "")[:32],
    )


def _shipping_method(shipping_lines: Any) -> str:
    if not shipping_lines:
        return "STANDARD"
    first = shipping_lines[0] if isinstance(shipping_lines, list) else {}
    text = f"{first.get('code') or ''} {first.get('title') or ''}".lower()
    if "pickup" in text or "pick up" in text:
        return "PICKUP"
    if "next day" in text or "overnight" in text or "next_day" in text:
        return "NEXT_DAY"
    if "express" in text or "priority" in text or "2 day" in text or "2-day" in text:
        return "EXPRESS"
    return "STANDARD"


def _channel(source_name: Any) -> str:
    source = str(source_name or "web").lower()
    if source == "web":
        return "online-store"
    if source == "shopify_draft_order":
        return "draft-order"
    return source if _CHANNEL.match(source) else "online-store"


def _sku(raw: Any, line_gid: str) -> str:
    sku = (raw or "").strip()
    if not _SKU.match(sku):
        raise TranslationError(f"line {numeric_id(line_gid)} has no usable SKU ({sku!r})")
    return sku


def _customer(gid: str | None) -> orders_pb2.CustomerRef | None:
    if not gid:
        return None
    return orders_pb2.CustomerRef(channel_customer=common_pb2.ExternalRef(system=SHOPIFY, id=gid))


def order_from_webhook(body: dict[str, Any]) -> orders_pb2.SalesOrder:
    """An `orders/create|updated|cancelled|paid` body as the SalesOrder IngestOrder takes.

    Quantities are the current ones (after edits and removals); lines with nothing left are left
    out, unless nothing is left at all (a cancelled order), when the original quantities are kept
    so the order can still be ingested and then cancelled.

    Raises:
        TranslationError: a line without a usable SKU, a missing id, a bad time or amount.
    """
    currency = body.get("currency") or "USD"
    order_gid = gid_of(body, "Order")
    if not body.get("updated_at"):
        raise TranslationError("order without updated_at")
    lines = []
    raw_lines = body.get("line_items") or []
    for use_current in (True, False):
        lines = []
        for raw in raw_lines:
            line_gid = gid_of(raw, "LineItem")
            quantity = raw.get("current_quantity") if use_current else raw.get("quantity")
            if quantity is None:
                quantity = raw.get("quantity")
            if not isinstance(quantity, int) or quantity <= 0:
                continue
            tax = sum((Decimal(str(t.get("price") or "0")) for t in raw.get("tax_lines") or []), Decimal(0))
            lines.append(
                orders_pb2.OrderLine(
                    line_id=numeric_id(line_gid),
                    channel_line=common_pb2.ExternalRef(
                        system=SHOPIFY, id=line_gid, name=(raw.get("name") or "")[:255]
                    ),
                    sku=_sku(raw.get("sku"), line_gid),
                    title=(raw.get("title") or "")[:255],
                    quantity=quantity,
                    unit_price=_shop_amount(raw.get("price_set"), raw.get("price"), currency),
                    discount_total=_shop_amount(
                        raw.get("total_discount_set"), raw.get("total_discount"), currency
                    ),
                    tax_total=money(tax, currency),
                )
            )
        if lines:
            break
    if not lines:
        raise TranslationError("order without lines")
    order = orders_pb2.SalesOrder(
        channel=_channel(body.get("source_name")),
        channel_order=common_pb2.ExternalRef(
            system=SHOPIFY, id=order_gid, name=(body.get("name") or "")[:255]
        ),
        lines=lines,
        totals=orders_pb2.OrderTotals(
            subtotal=_shop_amount(
                body.get("total_line_items_price_set"), body.get("total_line_items_price"), currency
            ),
            discount_total=_shop_amount(
                body.get("total_discounts_set"), body.get("total_discounts"), currency
            ),
            shipping_total=_shop_amount(body.get("total_shipping_price_set"), None, currency),
            tax_total=_shop_amount(body.get("total_tax_set"), body.get("total_tax"), currency),
            grand_total=_shop_amount(body.get("total_price_set"), body.get("total_price"), currency),
        ),
        tax_lines=[
            orders_pb2.TaxLine(
                title=(t.get("title") or "")[:255],
                rate=format(Decimal(str(t.get("rate") or "0")), "f"),
                amount=_shop_amount(t.get("price_set"), t.get("price"), currency),
            )
            for t in body.get("tax_lines") or []
        ],
        shipping_method=_shipping_method(body.get("shipping_lines")),
        payment_status=_PAYMENT.get(
            str(body.get("financial_status") or "").lower(), orders_pb2.PAYMENT_STATUS_UNSPECIFIED
        ),
    )
    customer = _customer(
        gid_of(body["customer"], "Customer") if isinstance(body.get("customer"), dict) else None
    )
    if customer is not None:
        order.customer.CopyFrom(customer)
    address = _address(body.get("shipping_address"))
    if address is not None:
        order.shipping_address.CopyFrom(address)
    placed = _timestamp(body.get("processed_at") or body.get("created_at"))
    if placed is not None:
        order.placed_at.CopyFrom(placed)
    order.channel_updated_at.CopyFrom(_timestamp(body["updated_at"]))
    return order


def order_from_graphql(node: dict[str, Any]) -> orders_pb2.SalesOrder:
    """An Admin GraphQL `Order` (as selected by `clients.admin.ORDER_FIELDS`) as a SalesOrder.

    Raises:
        TranslationError: as `order_from_webhook`.
    """
    currency = node.get("currencyCode") or "USD"

    def bag(value: Any) -> common_pb2.Money:
        shop = (value or {}).get("shopMoney") or {}
        return money(shop.get("amount"), shop.get("currencyCode") or currency)

    raw_lines = ((node.get("lineItems") or {}).get("nodes")) or []
    lines = []
    for use_current in (True, False):
        lines = []
        for raw in raw_lines:
            quantity = raw.get("currentQuantity") if use_current else raw.get("quantity")
            if not isinstance(quantity, int) or quantity <= 0:
                continue
            lines.append(
                orders_pb2.OrderLine(
                    line_id=numeric_id(raw["id"]),
                    channel_line=common_pb2.ExternalRef(
                        system=SHOPIFY, id=raw["id"], name=(raw.get("name") or "")[:255]
                    ),
                    sku=_sku(raw.get("sku"), raw["id"]),
                    title=(raw.get("title") or "")[:255],
                    quantity=quantity,
                    unit_price=bag(raw.get("originalUnitPriceSet")),
                    discount_total=money("0", currency),
                    tax_total=money("0", currency),
                )
            )
        if lines:
            break
    if not lines:
        raise TranslationError("order without lines")
    subtotal = bag(node.get("subtotalPriceSet"))
    order = orders_pb2.SalesOrder(
        channel="online-store",
        channel_order=common_pb2.ExternalRef(
            system=SHOPIFY, id=node["id"], name=(node.get("name") or "")[:255]
        ),
        lines=lines,
        totals=orders_pb2.OrderTotals(
            subtotal=subtotal,
            discount_total=money("0", currency),
            shipping_total=bag(node.get("totalShippingPriceSet")),
            tax_total=bag(node.get("totalTaxSet")),
            grand_total=bag(node.get("totalPriceSet")),
        ),
        shipping_method="STANDARD",
        payment_status=_PAYMENT.get(
            str(node.get("displayFinancialStatus") or "").lower(), orders_pb2.PAYMENT_STATUS_UNSPECIFIED
        ),
    )
    customer = _customer((node.get("customer") or {}).get("id"))
    if customer is not None:
        order.customer.CopyFrom(customer)
    address = _address(node.get("shippingAddress"), graphql=True)
    if address is not None:
        order.shipping_address.CopyFrom(address)
    placed = _timestamp(node.get("processedAt") or node.get("createdAt"))
    if placed is not None:
        order.placed_at.CopyFrom(placed)
    order.channel_updated_at.CopyFrom(_timestamp(node["updatedAt"]))
    return order


def cancellation_reason(reason: Any) -> int:
    """Shopify's `cancel_reason` (`customer`, `fraud`, `inventory`, `declined`, ...) as canonical."""
    return _CANCEL_REASON.get(str(reason or "").lower(), orders_pb2.CANCELLATION_REASON_OTHER)


def edited_order_gid(body: dict[str, Any]) -> str:
    """The order GID of an `orders/edited` body (`order_edit.order_id`, an exact integer)."""
    edit = body.get("order_edit")
    if not isinstance(edit, dict):
        raise TranslationError("orders/edited body without order_edit")
    raw = edit.get("order_id")
    if not isinstance(raw, int) or isinstance(raw, bool) or raw <= 0:
        raise TranslationError("orders/edited body without an exact order id")
    return f"gid://shopify/Order/{raw}"
