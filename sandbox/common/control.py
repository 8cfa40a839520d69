"""The ``/_sandbox/...`` inspection and control API every stand-in mounts.

GET  /_sandbox/state    the stand-in's state snapshot
GET  /_sandbox/counts   create calls per external key: ``{"attempts", "created", "duplicates",
                        "created_at"}`` (``created_at``: Unix seconds of each create, per key)
GET  /_sandbox/faults   the seed and the configured faults
PUT  /_sandbox/faults   ``{"operation": "<op>", "fault": {...}}`` or ``{"<op>": {...}, ...}``
DELETE /_sandbox/faults every fault, or only ``?operation=<op>``
POST /_sandbox/reset    ``{"seed": n}`` optional: seeded demo data again, no faults, no counts
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common.counters import CreateCounter
from sandbox.common.faults import FaultInjector, error_response

CONTROL_PREFIX = "/_sandbox"


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    return json.loads(raw)


def control_routes(
    *,
    state: Callable[[], dict],
    faults: FaultInjector,
    counter: CreateCounter,
    reset: Callable[[int], None],
) -> list[Route]:
    """Build the control routes of one stand-in.

    Args:
        state: returns a JSON-ready snapshot of the stand-in's state.
        faults: the stand-in's fault injector.
        counter: the stand-in's create counter.
        reset: rebuilds the stand-in's state from the demo data seeded with the given seed.
    """

    async def get_state(request: Request) -> Response:
        return JSONResponse(state())

    async def get_counts(request: Request) -> Response:
        return JSONResponse(
            {
                "attempts": counter.snapshot(),
                "created": counter.created(),
                "duplicates": counter.duplicates(),
                "created_at": counter.created_at(),
            }
        )

    async def get_faults(request: Request) -> Response:
        return JSONResponse(faults.snapshot())

    async def put_faults(request: Request) -> Response:
        try:
            body = await _json_body(request)
            if not isinstance(body, dict) or not body:
                raise ValueError("expected a JSON object")
            if "operation" in body and "fault" in body:
                faults.configure(str(body["operation"]), body["fault"])
            else:
                faults.configure_many(body)
        except (ValueError, ValidationError, TypeError) as exc:
            return error_response(400, "BadRequest", f"invalid fault settings: {exc}")
        return JSONResponse(faults.snapshot())

    async def delete_faults(request: Request) -> Response:
        operation = request.query_params.get("operation")
        if operation is None:
            faults.clear()
        else:
            faults.remove(operation)
        return JSONResponse(faults.snapshot())

    async def post_reset(request: Request) -> Response:
        try:
            body = await _json_body(request)
            seed = faults.seed if not body or body.get("seed") is None else int(body["seed"])
        except (ValueError, TypeError, AttributeError) as exc:
            return error_response(400, "BadRequest", f"invalid reset body: {exc}")
        faults.clear()
        faults.reseed(seed)
        counter.reset()
        reset(seed)
        return JSONResponse({"seed": seed})

    return [
        Route(f"{CONTROL_PREFIX}/state", get_state, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/counts", get_counts, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/faults", get_faults, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/faults", put_faults, methods=["PUT"]),
        Route(f"{CONTROL_PREFIX}/faults", delete_faults, methods=["DELETE"]),
        Route(f"{CONTROL_PREFIX}/reset", post_reset, methods=["POST"]),
    ]
