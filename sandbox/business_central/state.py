"""In-memory Business Central company: seeded demo data and the business rules of the API.

Everything here is plain Python (no HTTP): the app maps requests to these methods and
:class:`BusinessError` to OData error responses. Field names are those of API v2.0.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.common.stock import warehouse_on_hand

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
SEED_TIME = "2026-01-05T08:00:00Z"
DEMO_SKUS = [f"SKU-{n}" for n in range(1001, 1011)]
LOCATION_CODES = ("EAST", "WEST")

# Customer numbers with a story (see sandbox/README.md, Business Central).
WEB_CUSTOMER = "C10000"
RETAIL_CUSTOMER = "C20000"
BLOCKED_CUSTOMER = "C30000"
CREDIT_HOLD_CUSTOMER = "C40000"
NO_TAX_AREA_CUSTOMER = "C50000"
SHIP_BLOCKED_CUSTOMER = "C60000"
OUT_OF_STOCK_EAST = "SKU-1008"


class BusinessError(Exception):
    """A refusal as BC gives it: HTTP status, OData error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(entity: str, key: str) -> BusinessError:
    """BC's answer for an unknown key."""
    return BusinessError(404, "BadRequest_NotFound", f"The {entity} with id '{key}' does not exist.")


def _r2(value: float) -> float:
    return round(value + 0.0, 2)


@dataclass(frozen=True)
class EntitySet:
    """How one entity set is stored and exposed."""

    name: str
    store: str
    writable: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()


class BusinessCentralState:
    """One tenant with one company, its master data, documents and inventory.

    Args:
        seed: seed of the demo data and of the ids given to new records.
        now: the clock stamping ``lastModifiedDateTime`` and default dates.
    """

    def __init__(self, seed: int = 0, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self.reset(seed)

    # ----------------------------------------------------------------- seeding

    def reset(self, seed: int) -> None:
        """Rebuild the demo company from ``seed`` (same seed, same ids and data)."""
        self.seed = seed
        self._rng = random.Random(seed)
        self.company: dict[str, Any] = {}
        self.stores: dict[str, dict[str, dict[str, Any]]] = {
            name: {}
            for name in (
                "customers",
                "items",
                "locations",
                "vendors",
                "taxAreas",
                "salesOrders",
                "salesOrderLines",
                "salesShipments",
                "salesShipmentLines",
                "salesInvoices",
                "salesInvoiceLines",
                "salesCreditMemos",
                "salesCreditMemoLines",
                "purchaseOrders",
                "purchaseOrderLines",
            )
        }
        self.stock: dict[tuple[str, str], float] = {}
        self.holds: dict[str, dict[str, bool]] = {}
        self._series = {
            "salesOrders": 101000,
            "salesShipments": 102000,
            "salesInvoices": 103000,
            "salesCreditMemos": 104000,
            "purchaseOrders": 106000,
        }
        self._seed_demo()

    def new_id(self) -> str:
        """A GUID drawn from the seeded generator (reproducible runs give reproducible ids)."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def timestamp(self) -> str:
        """Now, in BC's ``lastModifiedDateTime`` format."""
        now = self._now().astimezone(UTC)
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"

    def today(self) -> str:
        """Today's date (work date) as ``YYYY-MM-DD``."""
        return self._now().astimezone(UTC).date().isoformat()

    def _next_number(self, series: str) -> str:
        self._series[series] += 1
        return str(self._series[series])

    def _put(self, store: str, record: dict[str, Any]) -> dict[str, Any]:
        record["_v"] = 1
        self.stores[store][record["id"]] = record
        return record

    def touch(self, record: dict[str, Any]) -> None:
        """Mark a record changed: new ETag, new ``lastModifiedDateTime`` where it has one."""
        record["_v"] = record.get("_v", 0) + 1
        if "lastModifiedDateTime" in record:
            record["lastModifiedDateTime"] = self.timestamp()

    def _seed_demo(self) -> None:
        self.company = {
            "id": self.new_id(),
            "systemVersion": "27.0.38460.41018",
            "timestamp": 2318,
            "name": "RETAIL MESH DEMO",
            "displayName": "Retail Mesh Demo Inc.",
            "businessProfileId": "",
            "systemCreatedAt": SEED_TIME,
            "systemCreatedBy": ZERO_GUID,
            "systemModifiedAt": SEED_TIME,
            "systemModifiedBy": ZERO_GUID,
            "_v": 1,
        }
        east_tax = self._put(
            "taxAreas",
            {
                "id": self.new_id(),
                "code": "NY-NYC",
                "displayName": "New York, NYC",
                "taxType": "Sales Tax",
                "lastModifiedDateTime": SEED_TIME,
                "_rate": 8.875,
            },
        )
        west_tax = self._put(
            "taxAreas",
            {
                "id": self.new_id(),
                "code": "WA-SEA",
                "displayName": "Washington, Seattle",
                "taxType": "Sales Tax",
                "lastModifiedDateTime": SEED_TIME,
                "_rate": 10.25,
            },
        )
        cities = {"EAST": ("New York", "NY", "10013"), "WEST": ("Seattle", "WA", "98104")}
        for code in LOCATION_CODES:
            city, state, postcode = cities[code]
            self._put(
                "locations",
                {
                    "id": self.new_id(),
                    "code": code,
                    "displayName": f"{code.title()} warehouse",
                    "contact": "",
                    "addressLine1": "1 Dock Street",
                    "addressLine2": "",
                    "city": city,
                    "state": state,
                    "country": "US",
                    "postalCode": postcode,
                    "phoneNumber": "",
                    "email": "",
                    "website": "",
                    "lastModifiedDateTime": SEED_TIME,
                },
            )
        customers = [
            (WEB_CUSTOMER, "Web Shop Customers", east_tax, True, " ", 0.0, 0.0),
            (RETAIL_CUSTOMER, "Adatum Corporation", west_tax, True, " ", 0.0, 0.0),
            (BLOCKED_CUSTOMER, "Blocked Trading Ltd", east_tax, True, "All", 0.0, 0.0),
            (CREDIT_HOLD_CUSTOMER, "Overdrawn Outfitters", east_tax, True, " ", 1000.0, 950.0),
            (NO_TAX_AREA_CUSTOMER, "Taxless Traders", None, True, " ", 0.0, 0.0),
            (SHIP_BLOCKED_CUSTOMER, "Hold Shipments Co", west_tax, True, "Ship", 0.0, 0.0),
        ]
        for number, name, tax, liable, blocked, limit, balance in customers:
            city, state, postcode = cities["EAST" if tax is not west_tax else "WEST"]
            self._put(
                "customers",
                {
                    "id": self.new_id(),
                    "number": number,
                    "displayName": name,
                    "type": "Company",
                    "addressLine1": "21 Station Road",
                    "addressLine2": "",
                    "city": city,
                    "state": state,
                    "country": "US",
                    "postalCode": postcode,
                    "phoneNumber": "",
                    "email": f"orders@{number.lower()}.example",
                    "website": "",
                    "salespersonCode": "",
                    "balanceDue": balance,
                    "creditLimit": limit,
                    "taxLiable": liable,
                    "taxAreaId": tax["id"] if tax else ZERO_GUID,
                    "taxAreaDisplayName": tax["displayName"] if tax else "",
                    "taxRegistrationNumber": "",
                    "currencyId": ZERO_GUID,
                    "currencyCode": "USD",
                    "paymentTermsId": ZERO_GUID,
                    "shipmentMethodId": ZERO_GUID,
                    "paymentMethodId": ZERO_GUID,
                    "blocked": blocked,
                    "lastModifiedDateTime": SEED_TIME,
                },
            )
        self._put(
            "vendors",
            {
                "id": self.new_id(),
                "number": "V10000",
                "displayName": "Fabrikam Supply",
                "addressLine1": "",
                "addressLine2": "",
                "city": "Chicago",
                "state": "IL",
                "country": "US",
                "postalCode": "61236",
                "phoneNumber": "",
                "email": "",
                "website": "",
                "taxRegistrationNumber": "",
                "currencyId": ZERO_GUID,
                "currencyCode": "USD",
                "irs1099Code": "",
                "paymentTermsId": ZERO_GUID,
                "paymentMethodId": ZERO_GUID,
                "taxLiable": False,
                "blocked": " ",
                "balance": 0.0,
                "lastModifiedDateTime": SEED_TIME,
            },
        )
        names = [
            "Canvas Tote",
            "Wool Beanie",
            "Trail Mug",
            "Linen Shirt",
            "Desk Lamp",
            "Notebook A5",
            "Water Bottle",
            "Rain Jacket",
            "Yoga Mat",
            "Travel Pillow",
        ]
        unit_id = self.new_id()
        tax_group_id = self.new_id()
        on_hand = warehouse_on_hand(self.seed)
        for index, (sku, name) in enumerate(zip(DEMO_SKUS, names, strict=True)):
            price = float(10 + 5 * index) + 0.99
            item = self._put(
                "items",
                {
                    "id": self.new_id(),
                    "number": sku,
                    "displayName": name,
                    "type": "Inventory",
                    "itemCategoryId": ZERO_GUID,
                    "itemCategoryCode": "",
                    "blocked": False,
                    "gtin": "",
                    "inventory": 0.0,
                    "unitPrice": price,
                    "priceIncludesTax": False,
                    "unitCost": _r2(price * 0.45),
                    "taxGroupId": tax_group_id,
                    "taxGroupCode": "TAXABLE",
                    "baseUnitOfMeasureId": unit_id,
                    "baseUnitOfMeasureCode": "PCS",
                    "lastModifiedDateTime": SEED_TIME,
                },
            )
            for code in LOCATION_CODES:
                # The ERP books what the warehouse holds (sandbox/common/stock.py); SKU-1008 at
                # EAST is the one deliberate disagreement, to demonstrate a refused posting.
                quantity = float(on_hand[(sku, code)])
                if sku == OUT_OF_STOCK_EAST and code == "EAST":
                    quantity = 0.0
                self.stock[(item["id"], self.location_by_code(code)["id"])] = quantity
            item["inventory"] = self.item_inventory(item["id"])

    # ---------------------------------------------------------------- lookups

    def location_by_code(self, code: str) -> dict[str, Any]:
        """The location with this code."""
        for location in self.stores["locations"].values():
            if location["code"] == code:
                return location
        raise KeyError(code)

    def item_inventory(self, item_id: str) -> float:
        """On hand over every location."""
        return sum(q for (i, _), q in self.stock.items() if i == item_id)

    def _find(self, store: str, field: str, value: str) -> dict[str, Any] | None:
        for record in self.stores[store].values():
            if str(record.get(field, "")).lower() == value.lower():
                return record
        return None

    def get(self, store: str, entity_id: str) -> dict[str, Any]:
        """One record by id, or 404."""
        record = self.stores[store].get(entity_id.lower())
        if record is None:
            raise not_found(store.rstrip("s"), entity_id)
        return record

    def lines_of(self, store: str, document_id: str) -> list[dict[str, Any]]:
        """The lines of a document, in sequence order."""
        lines = [line for line in self.stores[store].values() if line["documentId"] == document_id]
        return sorted(lines, key=lambda line: line["sequence"])

    # ------------------------------------------------------------ validation

    def _error(self, code: str, message: str, generic: bool) -> BusinessError:
        return BusinessError(400, "Application_DialogException" if generic else code, message)

    def _resolve_customer(self, body: dict[str, Any], generic: bool) -> dict[str, Any]:
        customer = None
        if body.get("customerId"):
            customer = self.stores["customers"].get(str(body["customerId"]).lower())
        elif body.get("customerNumber"):
            customer = self._find("customers", "number", str(body["customerNumber"]))
        if customer is None:
            key = body.get("customerId") or body.get("customerNumber") or ""
            raise self._error(
                "Application_CustomerNotFound",
                f"The field Customer No. of table Sales Header contains a value ({key}) that cannot be "
                "found in the related table (Customer).",
                generic,
            )
        return customer

    def check_customer_can_order(self, customer: dict[str, Any], generic: bool) -> None:
        """Blocked (All/Invoice) customers and taxable customers without a tax area are refused."""
        if customer["blocked"] in ("All", "Invoice"):
            raise self._error(
                "Application_CustomerBlocked",
                f"You cannot create this type of document when Customer {customer['number']} is blocked "
                f"with type {customer['blocked']}.",
                generic,
            )
        if customer["taxLiable"] and customer["taxAreaId"] == ZERO_GUID:
            raise self._error(
                "Application_TaxAreaMissing",
                f"Tax Area Code must have a value in Customer: No.={customer['number']}. "
                "It cannot be zero or empty.",
                generic,
            )

    def _check_holds(self, external: str, generic: bool) -> None:
        hold = self.holds.get(external) if external else None
        if not hold:
            return
        if hold.get("fraudHold"):
            raise self._error(
                "Application_FraudHold",
                f"Sales order with External Document No. {external} is on hold for fraud review and "
                "cannot be processed.",
                generic,
            )
        if hold.get("paymentNotAuthorized"):
            raise self._error(
                "Application_PaymentNotAuthorized",
                f"The payment for External Document No. {external} is not authorized. "
                "The document cannot be processed.",
                generic,
            )

    def _tax_rate(self, customer: dict[str, Any]) -> float:
        if not customer["taxLiable"]:
            return 0.0
        area = self.stores["taxAreas"].get(customer["taxAreaId"])
        return area["_rate"] if area else 0.0

    def _resolve_item(self, line: dict[str, Any], generic: bool) -> dict[str, Any]:
        item = None
        if line.get("itemId") and line["itemId"] != ZERO_GUID:
            item = self.stores["items"].get(str(line["itemId"]).lower())
        elif line.get("lineObjectNumber"):
            item = self._find("items", "number", str(line["lineObjectNumber"]))
        if item is None:
            key = line.get("lineObjectNumber") or line.get("itemId") or ""
            raise self._error(
                "Application_ItemNotFound",
                f"The field No. of table Sales Line contains a value ({key}) that cannot be found in the "
                "related table (Item).",
                generic,
            )
        if item["blocked"]:
            raise self._error("Application_ItemBlocked", f"Item {item['number']} is blocked.", generic)
        return item

    def _resolve_location(self, line: dict[str, Any]) -> str:
        location_id = str(line.get("locationId") or ZERO_GUID).lower()
        if location_id == ZERO_GUID:
            return self.location_by_code(LOCATION_CODES[0])["id"]
        if location_id not in self.stores["locations"]:
            raise BusinessError(
                400,
                "Application_LocationNotFound",
                f"The field Location Code of table Sales Line contains a value ({location_id}) that cannot "
                "be found in the related table (Location).",
            )
        return location_id

    # ------------------------------------------------------------ documents

    def _address_from(self, customer: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for prefix in ("sellTo", "billTo", "shipTo"):
            fields[f"{prefix}AddressLine1"] = customer["addressLine1"]
            fields[f"{prefix}AddressLine2"] = customer["addressLine2"]
            fields[f"{prefix}City"] = customer["city"]
            fields[f"{prefix}Country"] = customer["country"]
            fields[f"{prefix}State"] = customer["state"]
            fields[f"{prefix}PostCode"] = customer["postalCode"]
        return fields

    def _build_line(
        self, document_id: str, sequence: int, body: dict[str, Any], customer: dict[str, Any], generic: bool
    ) -> dict[str, Any]:
        line_type = body.get("lineType", "Item")
        if line_type != "Item":
            raise BusinessError(400, "BadRequest_InvalidRequest", "Only lineType 'Item' is supported.")
        item = self._resolve_item(body, generic)
        quantity = float(body.get("quantity", 0))
        if quantity <= 0:
            raise BusinessError(400, "Application_InvalidQuantity", "Quantity must be positive.")
        line = {
            "id": self.new_id(),
            "documentId": document_id,
            "sequence": sequence,
            "itemId": item["id"],
            "accountId": ZERO_GUID,
            "lineType": "Item",
            "lineObjectNumber": item["number"],
            "description": body.get("description") or item["displayName"],
            "unitOfMeasureId": item["baseUnitOfMeasureId"],
            "unitOfMeasureCode": item["baseUnitOfMeasureCode"],
            "quantity": quantity,
            "unitPrice": float(body.get("unitPrice", item["unitPrice"])),
            "discountAmount": float(body.get("discountAmount", 0)),
            "discountPercent": float(body.get("discountPercent", 0)),
            "discountAppliedBeforeTax": False,
            "amountExcludingTax": 0.0,
            "taxCode": item["taxGroupCode"],
            "taxPercent": self._tax_rate(customer),
            "totalTaxAmount": 0.0,
            "amountIncludingTax": 0.0,
            "invoiceDiscountAllocation": 0,
            "netAmount": 0.0,
            "netTaxAmount": 0.0,
            "netAmountIncludingTax": 0.0,
            "shipmentDate": body.get("shipmentDate") or self.today(),
            "shippedQuantity": 0.0,
            "invoicedQuantity": 0.0,
            "invoiceQuantity": float(body.get("invoiceQuantity", quantity)),
            "shipQuantity": float(body.get("shipQuantity", quantity)),
            "itemVariantId": ZERO_GUID,
            "locationId": self._resolve_location(body),
            "_v": 1,
        }
        self._amounts(line)
        return line

    @staticmethod
    def _amounts(line: dict[str, Any]) -> None:
        gross = line["quantity"] * line["unitPrice"]
        if line["discountPercent"]:
            line["discountAmount"] = _r2(gross * line["discountPercent"] / 100)
        net = _r2(gross - line["discountAmount"])
        tax = _r2(net * line["taxPercent"] / 100)
        line.update(
            amountExcludingTax=net,
            totalTaxAmount=tax,
            amountIncludingTax=_r2(net + tax),
            netAmount=net,
            netTaxAmount=tax,
            netAmountIncludingTax=_r2(net + tax),
        )

    def _totals(self, header: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        header["totalAmountExcludingTax"] = _r2(sum(line["amountExcludingTax"] for line in lines))
        header["totalTaxAmount"] = _r2(sum(line["totalTaxAmount"] for line in lines))
        header["totalAmountIncludingTax"] = _r2(sum(line["amountIncludingTax"] for line in lines))

    SALES_ORDER_WRITABLE = frozenset(
        {
            "externalDocumentNumber",
            "orderDate",
            "postingDate",
            "customerId",
            "customerNumber",
            "billToCustomerId",
            "billToCustomerNumber",
            "shipToName",
            "shipToContact",
            "sellToAddressLine1",
            "sellToAddressLine2",
            "sellToCity",
            "sellToCountry",
            "sellToState",
            "sellToPostCode",
            "billToAddressLine1",
            "billToAddressLine2",
            "billToCity",
            "billToCountry",
            "billToState",
            "billToPostCode",
            "shipToAddressLine1",
            "shipToAddressLine2",
            "shipToCity",
            "shipToCountry",
            "shipToState",
            "shipToPostCode",
            "shortcutDimension1Code",
            "shortcutDimension2Code",
            "currencyId",
            "currencyCode",
            "pricesIncludeTax",
            "paymentTermsId",
            "shipmentMethodId",
            "salesperson",
            "partialShipping",
            "requestedDeliveryDate",
            "discountAmount",
            "phoneNumber",
            "email",
            "billToName",
            "customerName",
        }
    )
    SALES_ORDER_READ_ONLY = frozenset(
        {
            "id",
            "number",
            "totalAmountExcludingTax",
            "totalTaxAmount",
            "totalAmountIncludingTax",
            "fullyShipped",
            "status",
            "lastModifiedDateTime",
            "discountAppliedBeforeTax",
            "@odata.etag",
            "@odata.context",
        }
    )
    LINE_WRITABLE = frozenset(
        {
            "itemId",
            "lineType",
            "lineObjectNumber",
            "description",
            "unitOfMeasureId",
            "unitOfMeasureCode",
            "quantity",
            "unitPrice",
            "discountAmount",
            "discountPercent",
            "taxCode",
            "shipmentDate",
            "invoiceQuantity",
            "shipQuantity",
            "itemVariantId",
            "locationId",
            "sequence",
        }
    )
    LINE_READ_ONLY = frozenset(
        {
            "id",
            "documentId",
            "accountId",
            "discountAppliedBeforeTax",
            "amountExcludingTax",
            "taxPercent",
            "totalTaxAmount",
            "amountIncludingTax",
            "invoiceDiscountAllocation",
            "netAmount",
            "netTaxAmount",
            "netAmountIncludingTax",
            "shippedQuantity",
            "invoicedQuantity",
            "@odata.etag",
        }
    )

    @staticmethod
    def check_properties(
        body: dict[str, Any],
        writable: frozenset[str],
        read_only: frozenset[str],
        entity: str,
        navigation: frozenset[str] = frozenset(),
    ) -> None:
        """Refuse properties the entity does not have, as BC does."""
        for name in body:
            if name not in writable and name not in read_only and name not in navigation:
                raise BusinessError(
                    400,
                    "BadRequest_PropertyNotFound",
                    f"The property '{name}' does not exist on type 'Microsoft.NAV.{entity}'.",
                )

    def create_sales_order(self, body: dict[str, Any], generic: bool = False) -> dict[str, Any]:
        """POST salesOrders, with ``salesOrderLines`` deep-inserted; all or nothing."""
        self.check_properties(
            body,
            self.SALES_ORDER_WRITABLE,
            self.SALES_ORDER_READ_ONLY,
            "salesOrder",
            frozenset({"salesOrderLines"}),
        )
        customer = self._resolve_customer(body, generic)
        self.check_customer_can_order(customer, generic)
        external = str(body.get("externalDocumentNumber") or "")
        self._check_holds(external, generic)
        order_id = self.new_id()
        lines_in = body.get("salesOrderLines") or []
        if not isinstance(lines_in, list):
            raise BusinessError(400, "BadRequest_InvalidRequest", "salesOrderLines must be an array.")
        lines = []
        for index, line_body in enumerate(lines_in):
            self.check_properties(line_body, self.LINE_WRITABLE, self.LINE_READ_ONLY, "salesOrderLine")
            sequence = int(line_body.get("sequence") or 10000 * (index + 1))
            lines.append(self._build_line(order_id, sequence, line_body, customer, generic))
        total = _r2(sum(line["amountIncludingTax"] for line in lines))
        self._check_credit(customer, total, generic)
        order = {
            "id": order_id,
            "number": self._next_number("salesOrders"),
            "externalDocumentNumber": external,
            "orderDate": body.get("orderDate") or self.today(),
            "postingDate": body.get("postingDate") or self.today(),
            "customerId": customer["id"],
            "customerNumber": customer["number"],
            "customerName": customer["displayName"],
            "billToName": customer["displayName"],
            "billToCustomerId": customer["id"],
            "billToCustomerNumber": customer["number"],
            "shipToName": customer["displayName"],
            "shipToContact": "",
            **self._address_from(customer),
            "shortcutDimension1Code": "",
            "shortcutDimension2Code": "",
            "currencyId": ZERO_GUID,
            "currencyCode": customer["currencyCode"],
            "pricesIncludeTax": False,
            "paymentTermsId": customer["paymentTermsId"],
            "shipmentMethodId": customer["shipmentMethodId"],
            "salesperson": customer["salespersonCode"],
            "partialShipping": True,
            "requestedDeliveryDate": "0001-01-01",
            "discountAmount": 0,
            "discountAppliedBeforeTax": False,
            "totalAmountExcludingTax": 0,
            "totalTaxAmount": 0,
            "totalAmountIncludingTax": 0,
            "fullyShipped": False,
            "status": "Draft",
            "lastModifiedDateTime": self.timestamp(),
            "phoneNumber": customer["phoneNumber"],
            "email": customer["email"],
        }
        for name in self.SALES_ORDER_WRITABLE - {
            "customerId",
            "customerNumber",
            "billToCustomerId",
            "billToCustomerNumber",
        }:
            if name in body and name in order:
                order[name] = body[name]
        self._totals(order, lines)
        self._put("salesOrders", order)
        for line in lines:
            self.stores["salesOrderLines"][line["id"]] = line
        return order

    def _check_credit(self, customer: dict[str, Any], amount: float, generic: bool) -> None:
        limit = customer["creditLimit"]
        if limit > 0 and customer["balanceDue"] + amount > limit:
            raise self._error(
                "Application_CreditLimitExceeded",
                f"Customer {customer['number']} is on credit hold: the balance due "
                f"({customer['balanceDue']:.2f}) plus this document ({amount:.2f}) exceeds the credit "
                f"limit ({limit:.2f}).",
                generic,
            )

    def update_sales_order(self, order: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """PATCH salesOrders(id): header fields only; the customer cannot change, nor the ship-to
        address once something shipped (BC refuses it: the posted shipment went to the old one)."""
        self.check_properties(body, self.SALES_ORDER_WRITABLE, self.SALES_ORDER_READ_ONLY, "salesOrder")
        for key in ("customerId", "customerNumber"):
            if key in body and str(body[key]).lower() != str(order[key]).lower():
                raise BusinessError(
                    400,
                    "Application_DialogException",
                    "You cannot change the customer on a sales order that has lines.",
                )
        moved = [name for name in body if name.startswith("shipTo") and body[name] != order.get(name)]
        if moved and any(line["shippedQuantity"] for line in self.lines_of("salesOrderLines", order["id"])):
            raise BusinessError(
                400,
                "Application_DialogException",
                f"You cannot change {moved[0]} because Order {order['number']} has been partly shipped.",
            )
        for name, value in body.items():
            if name in self.SALES_ORDER_WRITABLE and name in order:
                order[name] = value
        self.touch(order)
        return order

    def add_sales_order_line(
        self, order: dict[str, Any], body: dict[str, Any], generic: bool = False
    ) -> dict[str, Any]:
        """POST salesOrders(id)/salesOrderLines."""
        self.check_properties(body, self.LINE_WRITABLE, self.LINE_READ_ONLY, "salesOrderLine")
        customer = self.get("customers", order["customerId"])
        existing = self.lines_of("salesOrderLines", order["id"])
        sequence = int(body.get("sequence") or (max((x["sequence"] for x in existing), default=0) + 10000))
        line = self._build_line(order["id"], sequence, body, customer, generic)
        self.stores["salesOrderLines"][line["id"]] = line
        self._totals(order, [*existing, line])
        self.touch(order)
        return line

    def update_sales_order_line(self, line: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """PATCH a sales order line: quantities to ship/invoice, price, quantity, location."""
        self.check_properties(body, self.LINE_WRITABLE, self.LINE_READ_ONLY, "salesOrderLine")
        quantity = float(body.get("quantity", line["quantity"]))
        if quantity < line["shippedQuantity"]:
            raise BusinessError(
                400,
                "Application_DialogException",
                f"Quantity cannot be less than the quantity already shipped ({line['shippedQuantity']}).",
            )
        outstanding = quantity - line["shippedQuantity"]
        ship = float(body.get("shipQuantity", outstanding if "quantity" in body else line["shipQuantity"]))
        if ship < 0 or ship > outstanding:
            raise BusinessError(
                400,
                "Application_DialogException",
                f"You cannot ship more than {outstanding:g} units (Qty. to Ship on line {line['sequence']}).",
            )
        # BC revalidates Qty. to Invoice from Qty. to Ship when only the latter is given.
        invoice = float(body.get("invoiceQuantity", ship))
        if invoice < 0 or invoice > quantity - line["invoicedQuantity"]:
            raise BusinessError(
                400,
                "Application_DialogException",
                f"You cannot invoice more than {quantity - line['invoicedQuantity']:g} units.",
            )
        for name in ("description", "unitPrice", "discountAmount", "discountPercent", "shipmentDate"):
            if name in body:
                line[name] = body[name]
        if "locationId" in body:
            line["locationId"] = self._resolve_location(body)
        line.update(quantity=quantity, shipQuantity=ship, invoiceQuantity=invoice)
        self._amounts(line)
        self.touch(line)
        order = self.get("salesOrders", line["documentId"])
        self._totals(order, self.lines_of("salesOrderLines", order["id"]))
        self.touch(order)
        return line

    def delete_sales_order_line(self, line: dict[str, Any]) -> None:
        """DELETE a line that has not shipped."""
        if line["shippedQuantity"]:
            raise BusinessError(
                400, "Application_DialogException", "You cannot delete a line that has shipped."
            )
        del self.stores["salesOrderLines"][line["id"]]
        order = self.get("salesOrders", line["documentId"])
        self._totals(order, self.lines_of("salesOrderLines", order["id"]))
        self.touch(order)

    def delete_sales_order(self, order: dict[str, Any]) -> None:
        """DELETE salesOrders(id) (refused once something shipped)."""
        lines = self.lines_of("salesOrderLines", order["id"])
        if any(line["shippedQuantity"] for line in lines):
            raise BusinessError(
                400,
                "Application_DialogException",
                f"You cannot delete Order {order['number']} because it has been partly shipped.",
            )
        for line in lines:
            del self.stores["salesOrderLines"][line["id"]]
        del self.stores["salesOrders"][order["id"]]

    def ship_and_invoice(self, order: dict[str, Any], generic: bool = False) -> tuple[dict, dict]:
        """Microsoft.NAV.shipAndInvoice: post a shipment and an invoice for the quantities to ship.

        Lines post ``shipQuantity`` from their location and invoice ``invoiceQuantity``. An order
        fully shipped and invoiced is deleted, as BC deletes a fully posted order.
        """
        customer = self.get("customers", order["customerId"])
        if customer["blocked"] in ("All", "Invoice", "Ship"):
            raise self._error(
                "Application_CustomerBlocked",
                f"You cannot post this type of document when Customer {customer['number']} is blocked with "
                f"type {customer['blocked']}.",
                generic,
            )
        if customer["taxLiable"] and customer["taxAreaId"] == ZERO_GUID:
            self.check_customer_can_order(customer, generic)
        self._check_holds(order["externalDocumentNumber"], generic)
        lines = self.lines_of("salesOrderLines", order["id"])
        to_ship = [line for line in lines if line["shipQuantity"] > 0]
        if not to_ship:
            raise self._error("Application_NothingToPost", "There is nothing to post.", generic)
        needed: dict[tuple[str, str], float] = {}
        for line in to_ship:
            key = (line["itemId"], line["locationId"])
            needed[key] = needed.get(key, 0.0) + line["shipQuantity"]
        for (item_id, location_id), quantity in needed.items():
            if self.stock.get((item_id, location_id), 0.0) < quantity:
                item = self.get("items", item_id)
                location = self.get("locations", location_id)
                raise self._error(
                    "Application_InsufficientInventory",
                    f"You have insufficient quantity of Item {item['number']} on inventory at location "
                    f"{location['code']} (available {self.stock.get((item_id, location_id), 0.0):g}, "
                    f"needed {quantity:g}).",
                    generic,
                )
        now = self.timestamp()
        header_common = {
            "externalDocumentNumber": order["externalDocumentNumber"],
            "postingDate": self.today(),
            "customerNumber": order["customerNumber"],
            "customerName": order["customerName"],
            "billToName": order["billToName"],
            "billToCustomerNumber": order["billToCustomerNumber"],
            "shipToName": order["shipToName"],
            "shipToContact": order["shipToContact"],
        }
        for prefix in ("sellTo", "billTo", "shipTo"):
            for suffix in ("AddressLine1", "AddressLine2", "City", "Country", "State", "PostCode"):
                header_common[f"{prefix}{suffix}"] = order[f"{prefix}{suffix}"]
        shipment = {
            "id": self.new_id(),
            "number": self._next_number("salesShipments"),
            **{k: header_common[k] for k in ("externalDocumentNumber",)},
            "invoiceDate": self.today(),
            "postingDate": self.today(),
            "dueDate": self.today(),
            "customerPurchaseOrderReference": "",
            **{k: v for k, v in header_common.items() if k not in ("externalDocumentNumber", "postingDate")},
            "currencyCode": order["currencyCode"],
            "orderNumber": order["number"],
            "paymentTermsCode": "",
            "shipmentMethodCode": "",
            "salesperson": order["salesperson"],
            "pricesIncludeTax": order["pricesIncludeTax"],
            "lastModifiedDateTime": now,
            "phoneNumber": order["phoneNumber"],
            "email": order["email"],
        }
        self._put("salesShipments", shipment)
        invoice = {
            "id": self.new_id(),
            "number": self._next_number("salesInvoices"),
            "externalDocumentNumber": order["externalDocumentNumber"],
            "invoiceDate": self.today(),
            "postingDate": self.today(),
            "dueDate": self.today(),
            "customerPurchaseOrderReference": "",
            "customerId": order["customerId"],
            **{k: v for k, v in header_common.items() if k not in ("externalDocumentNumber", "postingDate")},
            "billToCustomerId": order["billToCustomerId"],
            "currencyId": order["currencyId"],
            "shortcutDimension1Code": order["shortcutDimension1Code"],
            "shortcutDimension2Code": order["shortcutDimension2Code"],
            "currencyCode": order["currencyCode"],
            "orderId": order["id"],
            "orderNumber": order["number"],
            "paymentTermsId": order["paymentTermsId"],
            "shipmentMethodId": order["shipmentMethodId"],
            "salesperson": order["salesperson"],
            "disputeStatusId": ZERO_GUID,
            "disputeStatus": "",
            "pricesIncludeTax": order["pricesIncludeTax"],
            "remainingAmount": 0,
            "discountAmount": 0,
            "discountAppliedBeforeTax": False,
            "totalAmountExcludingTax": 0,
            "totalTaxAmount": 0,
            "totalAmountIncludingTax": 0,
            "status": "Open",
            "lastModifiedDateTime": now,
            "phoneNumber": order["phoneNumber"],
            "email": order["email"],
        }
        self._put("salesInvoices", invoice)
        invoice_lines = []
        for line in lines:
            ship = line["shipQuantity"]
            if ship > 0:
                self.stock[(line["itemId"], line["locationId"])] -= ship
                self._put(
                    "salesShipmentLines",
                    {
                        "id": self.new_id(),
                        "documentId": shipment["id"],
                        "documentNo": shipment["number"],
                        "sequence": line["sequence"],
                        "lineType": "Item",
                        "lineObjectNumber": line["lineObjectNumber"],
                        "description": line["description"],
                        "unitOfMeasureCode": line["unitOfMeasureCode"],
                        "unitPrice": line["unitPrice"],
                        "quantity": ship,
                        "discountPercent": line["discountPercent"],
                        "taxPercent": line["taxPercent"],
                        "shipmentDate": self.today(),
                    },
                )
                line["shippedQuantity"] += ship
            shipped_not_invoiced = line["shippedQuantity"] - line["invoicedQuantity"]
            invoice_quantity = min(line["invoiceQuantity"], shipped_not_invoiced)
            if invoice_quantity > 0:
                posted = {
                    **{k: v for k, v in line.items() if k not in ("_v",)},
                    "id": self.new_id(),
                    "documentId": invoice["id"],
                    "quantity": invoice_quantity,
                    "discountAmount": 0.0,
                }
                for key in ("shippedQuantity", "invoicedQuantity", "invoiceQuantity", "shipQuantity"):
                    posted.pop(key, None)
                self._amounts(posted)
                invoice_lines.append(self._put("salesInvoiceLines", posted))
                line["invoicedQuantity"] += invoice_quantity
            line["shipQuantity"] = line["quantity"] - line["shippedQuantity"]
            line["invoiceQuantity"] = line["quantity"] - line["invoicedQuantity"]
            self.touch(line)
        self._totals(invoice, invoice_lines)
        invoice["remainingAmount"] = invoice["totalAmountIncludingTax"]
        customer["balanceDue"] = _r2(customer["balanceDue"] + invoice["totalAmountIncludingTax"])
        self.touch(customer)
        for item_id in {line["itemId"] for line in to_ship}:
            item = self.get("items", item_id)
            item["inventory"] = self.item_inventory(item_id)
            self.touch(item)
        if all(
            line["shippedQuantity"] >= line["quantity"] and line["invoicedQuantity"] >= line["quantity"]
            for line in lines
        ):
            for line in lines:
                del self.stores["salesOrderLines"][line["id"]]
            del self.stores["salesOrders"][order["id"]]
        else:
            order["status"] = "Open"
            order["fullyShipped"] = all(line["shippedQuantity"] >= line["quantity"] for line in lines)
            self.touch(order)
        return shipment, invoice

    # --------------------------------------------------------- credit memos

    CREDIT_MEMO_WRITABLE = frozenset(
        {
            "externalDocumentNumber",
            "creditMemoDate",
            "postingDate",
            "dueDate",
            "customerId",
            "customerNumber",
            "invoiceId",
            "invoiceNumber",
            "customerReturnReasonId",
            "phoneNumber",
            "email",
            "salesperson",
        }
    )
    CREDIT_MEMO_LINE_WRITABLE = frozenset(
        {
            "itemId",
            "lineType",
            "lineObjectNumber",
            "description",
            "quantity",
            "unitPrice",
            "discountAmount",
            "discountPercent",
            "locationId",
            "sequence",
            "unitOfMeasureCode",
            "unitOfMeasureId",
            "taxCode",
            "itemVariantId",
            "shipmentDate",
        }
    )

    def create_credit_memo(self, body: dict[str, Any], generic: bool = False) -> dict[str, Any]:
        """POST salesCreditMemos with ``salesCreditMemoLines`` deep-inserted (a Draft credit memo)."""
        self.check_properties(
            body,
            self.CREDIT_MEMO_WRITABLE,
            self.SALES_ORDER_READ_ONLY,
            "salesCreditMemo",
            frozenset({"salesCreditMemoLines"}),
        )
        customer = self._resolve_customer(body, generic)
        if customer["blocked"] == "All":
            self.check_customer_can_order(customer, generic)
        memo_id = self.new_id()
        lines = []
        for index, line_body in enumerate(body.get("salesCreditMemoLines") or []):
            self.check_properties(
                line_body, self.CREDIT_MEMO_LINE_WRITABLE, self.LINE_READ_ONLY, "salesCreditMemoLine"
            )
            line = self._build_line(
                memo_id, int(line_body.get("sequence") or 10000 * (index + 1)), line_body, customer, generic
            )
            for key in ("shippedQuantity", "invoicedQuantity", "invoiceQuantity", "shipQuantity"):
                line.pop(key)
            lines.append(line)
        invoice = None
        if body.get("invoiceId"):
            invoice = self.get("salesInvoices", str(body["invoiceId"]))
        elif body.get("invoiceNumber"):
            invoice = self._find("salesInvoices", "number", str(body["invoiceNumber"]))
        memo = {
            "id": memo_id,
            "number": self._next_number("salesCreditMemos"),
            "externalDocumentNumber": str(body.get("externalDocumentNumber") or ""),
            "creditMemoDate": body.get("creditMemoDate") or self.today(),
            "postingDate": body.get("postingDate") or self.today(),
            "dueDate": body.get("dueDate") or self.today(),
            "customerId": customer["id"],
            "customerNumber": customer["number"],
            "customerName": customer["displayName"],
            "billToName": customer["displayName"],
            "billToCustomerId": customer["id"],
            "billToCustomerNumber": customer["number"],
            **{k: v for k, v in self._address_from(customer).items() if not k.startswith("shipTo")},
            "currencyId": ZERO_GUID,
            "currencyCode": customer["currencyCode"],
            "paymentTermsId": customer["paymentTermsId"],
            "shipmentMethodId": customer["shipmentMethodId"],
            "salesperson": body.get("salesperson", customer["salespersonCode"]),
            "pricesIncludeTax": False,
            "discountAmount": 0,
            "discountAppliedBeforeTax": False,
            "totalAmountExcludingTax": 0,
            "totalTaxAmount": 0,
            "totalAmountIncludingTax": 0,
            "status": "Draft",
            "lastModifiedDateTime": self.timestamp(),
            "invoiceId": invoice["id"] if invoice else ZERO_GUID,
            "invoiceNumber": invoice["number"] if invoice else "",
            "customerReturnReasonId": body.get("customerReturnReasonId", ZERO_GUID),
            "phoneNumber": body.get("phoneNumber", customer["phoneNumber"]),
            "email": body.get("email", customer["email"]),
        }
        self._totals(memo, lines)
        self._put("salesCreditMemos", memo)
        for line in lines:
            self.stores["salesCreditMemoLines"][line["id"]] = line
        return memo

    def post_credit_memo(self, memo: dict[str, Any]) -> None:
        """Microsoft.NAV.post: the returned items come back on hand; the customer is credited."""
        if memo["status"] != "Draft":
            raise BusinessError(
                400, "Application_DialogException", f"Credit memo {memo['number']} is already posted."
            )
        lines = self.lines_of("salesCreditMemoLines", memo["id"])
        if not lines:
            raise BusinessError(400, "Application_NothingToPost", "There is nothing to post.")
        for line in lines:
            key = (line["itemId"], line["locationId"])
            self.stock[key] = self.stock.get(key, 0.0) + line["quantity"]
            item = self.get("items", line["itemId"])
            item["inventory"] = self.item_inventory(item["id"])
            self.touch(item)
        customer = self.get("customers", memo["customerId"])
        customer["balanceDue"] = _r2(customer["balanceDue"] - memo["totalAmountIncludingTax"])
        self.touch(customer)
        memo["status"] = "Open"
        self.touch(memo)

    # ------------------------------------------------------- purchase orders

    PURCHASE_WRITABLE = frozenset(
        {
            "orderDate",
            "postingDate",
            "vendorId",
            "vendorNumber",
            "requestedReceiptDate",
            "currencyCode",
            "purchaser",
            "shipToName",
        }
    )
    PURCHASE_LINE_WRITABLE = frozenset(
        {
            "itemId",
            "lineType",
            "lineObjectNumber",
            "description",
            "quantity",
            "directUnitCost",
            "locationId",
            "sequence",
            "receiveQuantity",
            "invoiceQuantity",
            "expectedReceiptDate",
            "unitOfMeasureCode",
        }
    )

    def create_purchase_order(self, body: dict[str, Any], generic: bool = False) -> dict[str, Any]:
        """POST purchaseOrders with ``purchaseOrderLines`` deep-inserted (incoming stock)."""
        self.check_properties(
            body,
            self.PURCHASE_WRITABLE,
            frozenset({"id", "number", "status"}),
            "purchaseOrder",
            frozenset({"purchaseOrderLines"}),
        )
        vendor = None
        if body.get("vendorId"):
            vendor = self.stores["vendors"].get(str(body["vendorId"]).lower())
        elif body.get("vendorNumber"):
            vendor = self._find("vendors", "number", str(body["vendorNumber"]))
        if vendor is None:
            raise self._error(
                "Application_VendorNotFound",
                f"The field Buy-from Vendor No. of table Purchase Header contains a value "
                f"({body.get('vendorNumber') or body.get('vendorId') or ''}) that cannot be found in the "
                "related table (Vendor).",
                generic,
            )
        order_id = self.new_id()
        lines = []
        for index, line_body in enumerate(body.get("purchaseOrderLines") or []):
            self.check_properties(
                line_body, self.PURCHASE_LINE_WRITABLE, frozenset({"id"}), "purchaseOrderLine"
            )
            item = self._resolve_item(line_body, generic)
            quantity = float(line_body.get("quantity", 0))
            if quantity <= 0:
                raise BusinessError(400, "Application_InvalidQuantity", "Quantity must be positive.")
            cost = float(line_body.get("directUnitCost", item["unitCost"]))
            lines.append(
                {
                    "id": self.new_id(),
                    "documentId": order_id,
                    "sequence": int(line_body.get("sequence") or 10000 * (index + 1)),
                    "itemId": item["id"],
                    "accountId": ZERO_GUID,
                    "lineType": "Item",
                    "lineObjectNumber": item["number"],
                    "description": line_body.get("description") or item["displayName"],
                    "unitOfMeasureId": item["baseUnitOfMeasureId"],
                    "unitOfMeasureCode": item["baseUnitOfMeasureCode"],
                    "quantity": quantity,
                    "directUnitCost": cost,
                    "discountAmount": 0,
                    "discountPercent": 0,
                    "discountAppliedBeforeTax": False,
                    "amountExcludingTax": _r2(quantity * cost),
                    "taxCode": "",
                    "taxPercent": 0,
                    "totalTaxAmount": 0,
                    "amountIncludingTax": _r2(quantity * cost),
                    "invoiceDiscountAllocation": 0,
                    "netAmount": _r2(quantity * cost),
                    "netTaxAmount": 0,
                    "netAmountIncludingTax": _r2(quantity * cost),
                    "expectedReceiptDate": line_body.get("expectedReceiptDate") or self.today(),
                    "receivedQuantity": 0.0,
                    "invoicedQuantity": 0.0,
                    "invoiceQuantity": float(line_body.get("invoiceQuantity", quantity)),
                    "receiveQuantity": float(line_body.get("receiveQuantity", quantity)),
                    "itemVariantId": ZERO_GUID,
                    "locationId": self._resolve_location(line_body),
                    "_v": 1,
                }
            )
        order = {
            "id": order_id,
            "number": self._next_number("purchaseOrders"),
            "orderDate": body.get("orderDate") or self.today(),
            "postingDate": body.get("postingDate") or self.today(),
            "vendorId": vendor["id"],
            "vendorNumber": vendor["number"],
            "vendorName": vendor["displayName"],
            "payToName": vendor["displayName"],
            "payToVendorId": vendor["id"],
            "payToVendorNumber": vendor["number"],
            "shipToName": body.get("shipToName", "Retail Mesh Demo Inc."),
            "shipToContact": "",
            "buyFromAddressLine1": vendor["addressLine1"],
            "buyFromAddressLine2": "",
            "buyFromCity": vendor["city"],
            "buyFromCountry": vendor["country"],
            "buyFromState": vendor["state"],
            "buyFromPostCode": vendor["postalCode"],
            "currencyId": ZERO_GUID,
            "currencyCode": body.get("currencyCode", vendor["currencyCode"]),
            "pricesIncludeTax": False,
            "paymentTermsId": vendor["paymentTermsId"],
            "shipmentMethodId": ZERO_GUID,
            "purchaser": body.get("purchaser", ""),
            "requestedReceiptDate": body.get("requestedReceiptDate", "0001-01-01"),
            "discountAmount": 0,
            "discountAppliedBeforeTax": False,
            "totalAmountExcludingTax": 0,
            "totalTaxAmount": 0,
            "totalAmountIncludingTax": 0,
            "fullyReceived": False,
            "status": "Draft",
            "lastModifiedDateTime": self.timestamp(),
        }
        self._totals(order, lines)
        self._put("purchaseOrders", order)
        for line in lines:
            self.stores["purchaseOrderLines"][line["id"]] = line
        return order

    def receive_and_invoice(self, order: dict[str, Any]) -> None:
        """Microsoft.NAV.receiveAndInvoice: the received quantities come on hand."""
        lines = self.lines_of("purchaseOrderLines", order["id"])
        to_receive = [line for line in lines if line["receiveQuantity"] > 0]
        if not to_receive:
            raise BusinessError(400, "Application_NothingToPost", "There is nothing to post.")
        for line in to_receive:
            key = (line["itemId"], line["locationId"])
            self.stock[key] = self.stock.get(key, 0.0) + line["receiveQuantity"]
            line["receivedQuantity"] += line["receiveQuantity"]
            line["invoicedQuantity"] = line["receivedQuantity"]
            line["receiveQuantity"] = line["quantity"] - line["receivedQuantity"]
            line["invoiceQuantity"] = line["receiveQuantity"]
            self.touch(line)
            item = self.get("items", line["itemId"])
            item["inventory"] = self.item_inventory(item["id"])
            self.touch(item)
        if all(line["receivedQuantity"] >= line["quantity"] for line in lines):
            for line in lines:
                del self.stores["purchaseOrderLines"][line["id"]]
            del self.stores["purchaseOrders"][order["id"]]
        else:
            order["status"] = "Open"
            self.touch(order)

    # -------------------------------------------------------------- inspect

    def stock_rows(self) -> list[dict[str, Any]]:
        """On hand per item and location (the sandbox's view; see README for how to read it in BC)."""
        rows = []
        for (item_id, location_id), quantity in sorted(self.stock.items()):
            item, location = self.stores["items"][item_id], self.stores["locations"][location_id]
            rows.append(
                {"itemNumber": item["number"], "locationCode": location["code"], "inventory": quantity}
            )
        return sorted(rows, key=lambda r: (r["itemNumber"], r["locationCode"]))

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-ready, without internal fields."""

        def clean(record: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in record.items() if not k.startswith("_")}

        return {
            "seed": self.seed,
            "company": clean(self.company),
            **{name: [clean(r) for r in store.values()] for name, store in self.stores.items()},
            "stock": self.stock_rows(),
            "holds": dict(self.holds),
        }
