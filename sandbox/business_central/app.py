"""The Business Central stand-in's HTTP app: token endpoint, API v2.0 routes, control routes.

Every API request goes, in order, through bearer auth (401), the per-client concurrency limit
and request window (429 + Retry-After), the fault injector for its operation, then the handler.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.business_central.config import BusinessCentralSettings
from sandbox.business_central.odata import (
    ODataError,
    etag,
    parse_count,
    parse_filter,
    parse_segments,
    parse_select,
)
from sandbox.business_central.state import BusinessCentralState, BusinessError, not_found
from sandbox.common.control import control_routes
from sandbox.common.counters import CreateCounter
from sandbox.common.faults import FaultInjector, error_response, retry_after_header
from sandbox.common.ratelimit import ConcurrencyLimit, SlidingWindow

API_PATH = re.compile(r"^(?P<prefix>/(?:v2\.0/[^/]+/[^/]+/)?api/v2\.0)/(?P<rest>.*)$")

# Entity set -> its navigation to lines (deep insert, $expand, nested routes).
LINES_OF = {
    "salesOrders": "salesOrderLines",
    "salesShipments": "salesShipmentLines",
    "salesInvoices": "salesInvoiceLines",
    "salesCreditMemos": "salesCreditMemoLines",
    "purchaseOrders": "purchaseOrderLines",
}
LINE_SETS = frozenset(LINES_OF.values())
ENTITY_SETS = frozenset({"customers", "items", "locations", "vendors", "taxAreas", *LINES_OF, *LINE_SETS})
ACTIONS = {
    ("salesOrders", "Microsoft.NAV.shipAndInvoice"): "shipAndInvoice",
    ("salesCreditMemos", "Microsoft.NAV.post"): "salesCreditMemos.post",
    ("purchaseOrders", "Microsoft.NAV.receiveAndInvoice"): "receiveAndInvoice",
}
CUSTOMER_WRITABLE = frozenset(
    {
        "displayName",
        "type",
        "addressLine1",
        "addressLine2",
        "city",
        "state",
        "country",
        "postalCode",
        "phoneNumber",
        "email",
        "website",
        "salespersonCode",
        "creditLimit",
        "taxLiable",
        "taxAreaId",
        "taxRegistrationNumber",
        "currencyCode",
        "paymentTermsId",
        "shipmentMethodId",
        "paymentMethodId",
        "blocked",
    }
)
ITEM_WRITABLE = frozenset({"displayName", "blocked", "gtin", "unitPrice", "unitCost", "priceIncludesTax"})


def _bc_error(exc: BusinessError) -> Response:
    return error_response(exc.status, exc.code, exc.message)


class BusinessCentralApp:
    """Holds the stand-in's state and the machinery around it; ``app`` is the Starlette app."""

    def __init__(
        self,
        settings: BusinessCentralSettings,
        now: Callable[[], datetime] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.state = BusinessCentralState(settings.seed, now=now)
        self.faults = FaultInjector(settings.seed)
        self.faults.configure_many(settings.faults)
        self.counter = CreateCounter()
        self.tokens: dict[str, tuple[str, float]] = {}
        self.windows: dict[str, SlidingWindow] = {}
        self.in_flight: dict[str, ConcurrencyLimit] = {}
        routes = [
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            *control_routes(state=self.snapshot, faults=self.faults, counter=self.counter, reset=self.reset),
            Route("/_sandbox/holds", self.holds, methods=["GET", "PUT", "DELETE"]),
            Route("/{path:path}", self.api, methods=["GET", "POST", "PATCH", "DELETE"]),
        ]
        self.app = Starlette(routes=routes)

    # ------------------------------------------------------------- control

    def snapshot(self) -> dict[str, Any]:
        """State for GET /_sandbox/state, with the limiter counts."""
        return {
            **self.state.snapshot(),
            "requestsInWindow": {client: w.in_window() for client, w in self.windows.items()},
        }

    def reset(self, seed: int) -> None:
        """Seeded demo data again; request windows emptied; tokens stay valid."""
        self.state.reset(seed)
        for window in self.windows.values():
            window.reset()

    async def holds(self, request: Request) -> Response:
        """GET/PUT/DELETE /_sandbox/holds: payment and fraud holds per externalDocumentNumber."""
        if request.method == "PUT":
            try:
                body = json.loads(await request.body())
                key = str(body["externalDocumentNumber"])
                self.state.holds[key] = {
                    "paymentNotAuthorized": bool(body.get("paymentNotAuthorized", False)),
                    "fraudHold": bool(body.get("fraudHold", False)),
                }
            except (ValueError, KeyError, TypeError) as exc:
                return error_response(400, "BadRequest", f"invalid hold: {exc}")
        elif request.method == "DELETE":
            key = request.query_params.get("externalDocumentNumber")
            if key is None:
                self.state.holds.clear()
            else:
                self.state.holds.pop(key, None)
        return JSONResponse(self.state.holds)

    # --------------------------------------------------------------- token

    async def token(self, request: Request) -> Response:
        """POST /{tenant}/oauth2/v2.0/token: the client-credentials grant, answered as Entra ID does."""
        early = await self.faults.before("token")
        if early is not None:
            return early
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}

        def refuse(status: int, error: str, description: str) -> Response:
            return JSONResponse({"error": error, "error_description": description}, status_code=status)

        if form.get("grant_type") != "client_credentials":
            return refuse(
                400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type."
            )
        if not form.get("scope", "").endswith("/.default"):
            return refuse(
                400,
                "invalid_scope",
                "AADSTS1002012: The provided value for scope is not valid; "
                "client credential flows must have a scope value with /.default suffixed.",
            )
        if not (
            secrets.compare_digest(form.get("client_id", ""), self.settings.client_id)
            and secrets.compare_digest(form.get("client_secret", ""), self.settings.client_secret)
        ):
            return refuse(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        token = secrets.token_urlsafe(32)
        self.tokens[token] = (form["client_id"], self.clock() + self.settings.token_ttl_s)
        ttl = self.settings.token_ttl_s
        return JSONResponse(
            {"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": token}
        )

    def _client_of(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        found = self.tokens.get(token.strip())
        if found is None or found[1] <= self.clock():
            return None
        return found[0]

    # ----------------------------------------------------------------- API

    async def api(self, request: Request) -> Response:
        """Every API v2.0 request: auth, limits, faults, then the OData handler."""
        match = API_PATH.match(request.url.path)
        if match is None:
            return error_response(404, "BadRequest_NotFound", f"No resource at '{request.url.path}'.")
        client = self._client_of(request)
        if client is None:
            return error_response(
                401,
                "Authentication_InvalidCredentials",
                "The server has rejected the client credentials.",
                headers={"WWW-Authenticate": 'Bearer authorization_uri="http://127.0.0.1/oauth2/authorize"'},
            )
        limit = self.in_flight.setdefault(client, ConcurrencyLimit(self.settings.max_concurrent))
        if not limit.try_enter():
            return error_response(
                429,
                "Application_TooManyRequests",
                f"Too many simultaneous requests. Maximum ({self.settings.max_concurrent}).",
                headers={"Retry-After": "1"},
            )
        try:
            window = self.windows.setdefault(
                client, SlidingWindow(self.settings.rate_limit, self.settings.rate_window_s, clock=self.clock)
            )
            ok, retry_after = window.try_acquire()
            if not ok:
                return error_response(
                    429,
                    "Application_TooManyRequests",
                    f"Too many requests reached. Maximum ({self.settings.rate_limit}) per "
                    f"{self.settings.rate_window_s:g} seconds.",
                    headers={"Retry-After": retry_after_header(retry_after)},
                )
            base = str(request.base_url).rstrip("/") + match.group("prefix")
            try:
                operation, handle = self._route(request, base, match.group("rest"))
            except (BusinessError, ODataError) as exc:
                return self._error(exc)
            return await self.faults.guard(operation, handle)
        finally:
            limit.leave()

    def _error(self, exc: Exception) -> Response:
        if isinstance(exc, BusinessError):
            return _bc_error(exc)
        return error_response(400, "BadRequest_InvalidQueryOption", str(exc))

    def _route(self, request: Request, base: str, rest: str) -> tuple[str, Callable[[], Awaitable[Response]]]:
        segments = parse_segments(rest)
        method = request.method
        if not segments or segments[0][0] != "companies":
            raise not_found("resource", rest)
        company_key = segments[0][1]
        if company_key is None:
            if len(segments) > 1 or method != "GET":
                raise BusinessError(405, "BadRequest_MethodNotAllowed", "Only GET is allowed on companies.")
            return "companies.list", self._guarded(lambda: self._list_companies(request, base))
        if company_key.lower() != self.state.company["id"]:
            raise not_found("company", company_key)
        context = f"{base}/$metadata#companies({self.state.company['id']})"
        if len(segments) == 1:
            return "companies.get", self._guarded(
                lambda: self._single(request, f"{base}/$metadata#companies/$entity", self.state.company, None)
            )
        set_name, key = segments[1]
        if set_name not in ENTITY_SETS:
            raise not_found("entity set", set_name)
        nested = segments[2:]
        if key is None:
            if nested:
                raise not_found("resource", rest)
            return self._collection_route(request, context, set_name, None)
        record = self.state.get(set_name, key)
        if not nested:
            return self._entity_route(request, context, set_name, record)
        nav, nav_key = nested[0]
        if len(nested) == 1 and (set_name, nav) in ACTIONS:
            if method != "POST":
                raise BusinessError(405, "BadRequest_MethodNotAllowed", f"{nav} is a bound action: use POST.")
            return ACTIONS[(set_name, nav)], lambda: self._action(nav, record)
        if LINES_OF.get(set_name) != nav or len(nested) > 1:
            raise not_found("navigation property", nav)
        if nav_key is None:
            return self._collection_route(request, f"{context}/{set_name}({record['id']})", nav, record)
        line = self.state.get(nav, nav_key)
        if line["documentId"] != record["id"]:
            raise not_found(nav.rstrip("s"), nav_key)
        return self._entity_route(request, f"{context}/{set_name}({record['id']})", nav, line)

    # ------------------------------------------------------- serialization

    def _present(
        self, set_name: str, record: dict[str, Any], select: list[str] | None, expand: list[str]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"@odata.etag": etag(record["id"], record.get("_v", 1))}
        for name, value in record.items():
            if name.startswith("_") or (select is not None and name not in select and name != "id"):
                continue
            body[name] = value
        for nav in expand:
            if LINES_OF.get(set_name) != nav:
                raise ODataError(f"Could not find a property named '{nav}' on type '{set_name}'.")
            body[nav] = [
                self._present(nav, line, None, []) for line in self.state.lines_of(nav, record["id"])
            ]
        return body

    @staticmethod
    def _options(request: Request) -> tuple[list[str] | None, list[str]]:
        select = parse_select(request.query_params.get("$select"))
        expand = [n.strip() for n in request.query_params.get("$expand", "").split(",") if n.strip()]
        return select, expand

    def _single(
        self,
        request: Request,
        context: str,
        record: dict[str, Any],
        set_name: str | None,
        status: int = 200,
        location: str | None = None,
    ) -> Response:
        select, expand = self._options(request)
        body = {"@odata.context": context, **self._present(set_name or "", record, select, expand)}
        headers = {"ETag": body["@odata.etag"]}
        if location:
            headers["Location"] = location
        return JSONResponse(body, status_code=status, headers=headers)

    def _list_companies(self, request: Request, base: str) -> Response:
        company = {k: v for k, v in self.state.company.items() if not k.startswith("_")}
        return JSONResponse({"@odata.context": f"{base}/$metadata#companies", "value": [company]})

    def _query(self, request: Request, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        params = request.query_params
        if params.get("$filter"):
            predicate = parse_filter(params["$filter"])
            records = [r for r in records if predicate(r)]
        if params.get("$orderby"):
            for clause in reversed([c.strip() for c in params["$orderby"].split(",")]):
                name, _, direction = clause.partition(" ")
                records = sorted(
                    records,
                    key=lambda r, n=name: (r.get(n) is None, r.get(n)),
                    reverse=direction.strip().lower() == "desc",
                )
        skip = parse_count("$skip", params.get("$skip")) or 0
        top = parse_count("$top", params.get("$top"))
        return records[skip:] if top is None else records[skip : skip + top]

    # ------------------------------------------------------------- routes

    def _collection_route(
        self, request: Request, context: str, set_name: str, parent: dict[str, Any] | None
    ) -> tuple[str, Callable[[], Awaitable[Response]]]:
        method = request.method
        if method == "GET":

            def list_records() -> Response:
                if parent is not None:
                    records = self.state.lines_of(set_name, parent["id"])
                else:
                    records = list(self.state.stores[set_name].values())
                    if set_name in LINE_SETS and "documentId" not in request.query_params.get("$filter", ""):
                        raise BusinessError(
                            400,
                            "BadRequest_InvalidRequest",
                            "You must specify a document id to get the lines.",
                        )
                select, expand = self._options(request)
                value = [self._present(set_name, r, select, expand) for r in self._query(request, records)]
                return JSONResponse({"@odata.context": f"{context}/{set_name}", "value": value})

            return f"{set_name}.list", self._guarded(list_records)
        if method == "POST":
            return f"{set_name}.create", self._guarded(
                lambda: self._create(request, context, set_name, parent)
            )
        raise BusinessError(405, "BadRequest_MethodNotAllowed", f"{method} is not allowed on {set_name}.")

    def _entity_route(
        self, request: Request, context: str, set_name: str, record: dict[str, Any]
    ) -> tuple[str, Callable[[], Awaitable[Response]]]:
        method = request.method
        entity_context = f"{context}/{set_name}/$entity"
        if method == "GET":
            return f"{set_name}.get", self._guarded(
                lambda: self._single(request, entity_context, record, set_name)
            )
        if method == "PATCH":
            return f"{set_name}.update", self._guarded(
                lambda: self._update(request, entity_context, set_name, record)
            )
        if method == "DELETE":
            return f"{set_name}.delete", self._guarded(lambda: self._delete(request, set_name, record))
        raise BusinessError(405, "BadRequest_MethodNotAllowed", f"{method} is not allowed here.")

    def _guarded(self, handler: Callable[..., Any]) -> Callable[[], Awaitable[Response]]:
        async def run() -> Response:
            try:
                result = handler()
                if hasattr(result, "__await__"):
                    result = await result
                return result
            except (BusinessError, ODataError) as exc:
                return self._error(exc)

        return run

    def _check_if_match(self, request: Request, record: dict[str, Any]) -> None:
        given = request.headers.get("if-match")
        if given is None:
            raise BusinessError(
                428,
                "Request_IfMatchRequired",
                "An If-Match header is required to change this entity; read it and send its @odata.etag.",
            )
        current = etag(record["id"], record.get("_v", 1))
        if given.strip() != "*" and given.strip() not in (current, current[2:]):
            raise BusinessError(
                412,
                "Request_EntityChanged",
                "Another user has already changed the record. Read the record again and retry.",
            )

    async def _json(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise BusinessError(
                400, "BadRequest_InvalidRequestBody", f"The request body is not JSON: {exc}"
            ) from exc
        if not isinstance(body, dict):
            raise BusinessError(
                400, "BadRequest_InvalidRequestBody", "The request body must be a JSON object."
            )
        return body

    async def _create(
        self, request: Request, context: str, set_name: str, parent: dict[str, Any] | None
    ) -> Response:
        body = await self._json(request)
        generic = self.settings.generic_error_codes
        counted = {
            "salesOrders": "salesOrders",
            "salesCreditMemos": "salesCreditMemos",
            "purchaseOrders": "purchaseOrders",
        }
        try:
            if set_name == "salesOrders":
                record = self.state.create_sales_order(body, generic)
            elif set_name == "salesCreditMemos":
                record = self.state.create_credit_memo(body, generic)
            elif set_name == "purchaseOrders":
                record = self.state.create_purchase_order(body, generic)
            elif set_name == "salesOrderLines" and parent is not None:
                record = self.state.add_sales_order_line(parent, body, generic)
            else:
                raise BusinessError(405, "BadRequest_MethodNotAllowed", f"POST is not allowed on {set_name}.")
        except BusinessError:
            if set_name in counted:
                self.counter.record(set_name, str(body.get("externalDocumentNumber") or ""), created=False)
            raise
        if set_name in counted:
            self.counter.record(
                set_name, record.get("externalDocumentNumber", record["number"]), created=True
            )
        location = f"{context.split('/$metadata#')[0]}/{context.split('#', 1)[1]}/{set_name}({record['id']})"
        return self._single(request, f"{context}/{set_name}/$entity", record, set_name, 201, location)

    async def _update(
        self, request: Request, context: str, set_name: str, record: dict[str, Any]
    ) -> Response:
        body = await self._json(request)
        self._check_if_match(request, record)
        if set_name == "salesOrders":
            self.state.update_sales_order(record, body)
        elif set_name == "salesOrderLines":
            self.state.update_sales_order_line(record, body)
        elif set_name in ("customers", "items"):
            writable = CUSTOMER_WRITABLE if set_name == "customers" else ITEM_WRITABLE
            self.state.check_properties(body, writable, frozenset(record) | {"@odata.etag"}, set_name[:-1])
            for name, value in body.items():
                if name in writable:
                    record[name] = value
            if set_name == "customers" and "taxAreaId" in body:
                area = self.state.stores["taxAreas"].get(str(body["taxAreaId"]).lower())
                record["taxAreaDisplayName"] = area["displayName"] if area else ""
            self.state.touch(record)
        else:
            raise BusinessError(405, "BadRequest_MethodNotAllowed", f"PATCH is not allowed on {set_name}.")
        return self._single(request, context, record, set_name)

    async def _delete(self, request: Request, set_name: str, record: dict[str, Any]) -> Response:
        self._check_if_match(request, record)
        if set_name == "salesOrders":
            self.state.delete_sales_order(record)
        elif set_name == "salesOrderLines":
            self.state.delete_sales_order_line(record)
        elif set_name == "salesCreditMemos" and record["status"] == "Draft":
            for line in self.state.lines_of("salesCreditMemoLines", record["id"]):
                del self.state.stores["salesCreditMemoLines"][line["id"]]
            del self.state.stores["salesCreditMemos"][record["id"]]
        else:
            raise BusinessError(405, "BadRequest_MethodNotAllowed", f"DELETE is not allowed on {set_name}.")
        return Response(status_code=204)

    async def _action(self, action: str, record: dict[str, Any]) -> Response:
        try:
            if action == "Microsoft.NAV.shipAndInvoice":
                self.state.ship_and_invoice(record, self.settings.generic_error_codes)
            elif action == "Microsoft.NAV.post":
                self.state.post_credit_memo(record)
            else:
                self.state.receive_and_invoice(record)
        except BusinessError as exc:
            return _bc_error(exc)
        return Response(status_code=204)


def create_app(
    settings: BusinessCentralSettings | None = None,
    *,
    now: Callable[[], datetime] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """Build the stand-in; ``app.state.bc`` is the :class:`BusinessCentralApp` behind it (for tests).

    Args:
        settings: the stand-in's settings (defaults read from ``BC_SANDBOX_*``).
        now: wall clock for record timestamps and dates.
        clock: monotonic clock for tokens and the request window.
    """
    bc = BusinessCentralApp(settings or BusinessCentralSettings(), now=now, clock=clock)
    bc.app.state.bc = bc
    return bc.app
