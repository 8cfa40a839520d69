"""The Shopify stand-in's HTTP app: Admin GraphQL, the checkout and shop actions, control routes.

Wired in order: fault injector and create counter, webhook dispatcher, store (announcing to the
dispatcher), GraphQL throttle bucket, routes; the dispatcher runs for the app's lifespan.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.control import control_routes
from sandbox.common.counters import CreateCounter
from sandbox.common.faults import FaultInjector, dropped_response, error_response
from sandbox.common.ratelimit import LeakyBucket
from sandbox.shopify import checkout, records
from sandbox.shopify.config import API_VERSION, ShopifySettings
from sandbox.shopify.cost import query_cost
from sandbox.shopify.schema import SCHEMA, Context, default_resolver
from sandbox.shopify.state import Store
from sandbox.shopify.webhooks import DeliveryFaults, WebhookDispatcher

_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


@functools.lru_cache(maxsize=512)
def _checked(query: str) -> tuple[DocumentNode | None, tuple[dict[str, Any], ...]]:
    """The parsed and validated document of a query text (None, with the errors, if it is not
    valid), worked out once per text. Clients send the same few queries again and again, and
    parsing and validating each one took about two thirds of the stand-in's CPU under the bench's
    load: work a real shop does on Shopify's machines, not on the integration's."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, (exc.formatted,)
    problems = validate(SCHEMA, document)
    if problems:
        return None, tuple(p.formatted for p in problems)
    return document, ()


class AdminGraphQL:
    """``POST /admin/api/<version>/graphql.json``: auth, cost, throttle, faults, execution."""

    def __init__(
        self,
        settings: ShopifySettings,
        store: Store,
        counter: CreateCounter,
        faults: FaultInjector,
        bucket: LeakyBucket,
    ) -> None:
        self._settings = settings
        self._store = store
        self._counter = counter
        self._faults = faults
        self._bucket = bucket

    def _cost(self, requested: int, actual: int | None, available: float) -> dict[str, Any]:
        return {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": {
                    "maximumAvailable": self._bucket.capacity,
                    "currentlyAvailable": int(available),
                    "restoreRate": self._bucket.restore_rate_per_s,
                },
            }
        }

    @staticmethod
    def _reply(body: dict[str, Any], status: int = 200) -> Response:
        return JSONResponse(body, status_code=status, headers={"X-Shopify-API-Version": API_VERSION})

    async def handle(self, request: Request) -> Response:
        """Serve one GraphQL request."""
        if request.headers.get("X-Shopify-Access-Token") != self._settings.access_token:
            return JSONResponse({"errors": INVALID_TOKEN}, status_code=401)
        if not _VERSION.match(request.path_params["version"]):
            return JSONResponse({"errors": "Not Found"}, status_code=404)
        try:
            payload = json.loads(await request.body())
            query = payload["query"]
            variables = payload.get("variables") or {}
            operation_name = payload.get("operationName")
            if not isinstance(query, str) or not isinstance(variables, dict):
                raise TypeError("query must be a string and variables an object")
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                {"errors": {"query": "Required parameter missing or invalid"}}, status_code=400
            )
        document, problems = _checked(query)
        if document is None:
            return self._reply({"errors": list(problems)})
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return self._reply({"errors": [{"message": "Operation not found or ambiguous."}]})

        requested = query_cost(SCHEMA, document, operation, variables)
        if requested > self._settings.max_query_cost:
            return self._reply(
                {
                    "errors": [
                        {
                            "message": f"Query cost is {requested}, which exceeds the single query max cost "
                            f"limit ({self._settings.max_query_cost}).",
                            "extensions": {
                                "code": "MAX_COST_EXCEEDED",
                                "cost": requested,
                                "maxCost": self._settings.max_query_cost,
                            },
                        }
                    ],
                    "extensions": self._cost(requested, None, self._bucket.available()),
                }
            )
        ok, available = self._bucket.try_take(requested)
        if not ok:
            return self._reply(
                {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ],
                    "extensions": self._cost(requested, None, available),
                }
            )

        root = next((s.name.value for s in operation.selection_set.selections if hasattr(s, "name")), "query")
        op_name = f"graphql.{root}"
        if self._faults.fault_for(op_name) is None:
            op_name = "graphql"
        early = await self._faults.before(op_name)
        if early is not None:
            self._bucket.refund(requested)
            return early
        result = execute(
            SCHEMA,
            document,
            context_value=Context(self._store, self._counter),
            variable_values=variables,
            operation_name=operation_name,
            field_resolver=default_resolver,
        )
        actual = query_cost(SCHEMA, document, operation, variables, result.data, actual=True)
        available = self._bucket.refund(max(0, requested - actual))
        if operation.operation == OperationType.MUTATION and self._faults.should_drop_response(op_name):
            return dropped_response()
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        body["data"] = result.data
        body["extensions"] = self._cost(requested, actual, available)
        return self._reply(body)


def create_app(settings: ShopifySettings | None = None) -> Starlette:
    """Build the Shopify stand-in. ``app.state`` holds ``store``, ``dispatcher``, ``faults``, ``counter``."""
    settings = settings or ShopifySettings()
    faults = FaultInjector(settings.seed)
    faults.configure_many(settings.faults)
    counter = CreateCounter()
    holder: dict[str, Store] = {}
    dispatcher = WebhookDispatcher(settings, lambda: holder["store"].subscriptions, faults)
    dispatcher.set_faults(DeliveryFaults.model_validate(settings.webhook_faults))
    store = Store(settings.seed, settings.shop_domain, emit=dispatcher.publish)
    holder["store"] = store
    bucket = LeakyBucket(settings.throttle_capacity, settings.throttle_restore_rate)
    admin = AdminGraphQL(settings, store, counter, faults, bucket)

    def state() -> dict[str, Any]:
        snapshot = store.snapshot()
        snapshot["webhooks_removed"] = list(dispatcher.removed)
        snapshot["throttle"] = {
            "maximumAvailable": bucket.capacity,
            "currentlyAvailable": int(bucket.available()),
            "restoreRate": bucket.restore_rate_per_s,
        }
        return snapshot

    def reset(seed: int) -> None:
        store.reset(seed)
        dispatcher.reset(seed)
        bucket.reset()

    async def get_webhook_faults(request: Request) -> Response:
        return JSONResponse(dispatcher.faults_snapshot())

    async def put_webhook_faults(request: Request) -> Response:
        try:
            dispatcher.set_faults(DeliveryFaults.model_validate(json.loads(await request.body() or b"{}")))
        except (ValueError, ValidationError) as exc:
            return error_response(400, "BadRequest", f"invalid webhook faults: {exc}")
        return JSONResponse(dispatcher.faults_snapshot())

    async def delete_webhook_faults(request: Request) -> Response:
        dispatcher.set_faults(DeliveryFaults())
        return JSONResponse(dispatcher.faults_snapshot())

    async def get_deliveries(request: Request) -> Response:
        return JSONResponse({"deliveries": dispatcher.deliveries(request.query_params.get("topic"))})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with dispatcher.running():
            yield

    routes = [
        Route("/admin/api/{version}/graphql.json", admin.handle, methods=["POST"]),
        *checkout.routes(store, faults, counter),
        *records.routes(store, faults, counter),
        Route("/_sandbox/webhook-faults", get_webhook_faults, methods=["GET"]),
        Route("/_sandbox/webhook-faults", put_webhook_faults, methods=["PUT"]),
        Route("/_sandbox/webhook-faults", delete_webhook_faults, methods=["DELETE"]),
        Route("/_sandbox/deliveries", get_deliveries, methods=["GET"]),
        *control_routes(state=state, faults=faults, counter=counter, reset=reset),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.state.store = store
    app.state.dispatcher = dispatcher
    app.state.faults = faults
    app.state.counter = counter
    app.state.bucket = bucket
    return app
