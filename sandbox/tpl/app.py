"""Wiring of the 3PL stand-in: the warehouse, its API, the control routes, the background loops."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from sandbox.common.control import control_routes
from sandbox.tpl.api import api_routes, tpl_control_routes
from sandbox.tpl.config import TplSettings
from sandbox.tpl.payload import snapshot
from sandbox.tpl.receiving import receiving_routes
from sandbox.tpl.warehouse import Warehouse


def create_app(settings: TplSettings | None = None) -> Starlette:
    """The 3PL stand-in as an ASGI app; ``app.state.warehouse`` is the running warehouse."""
    settings = settings or TplSettings()
    warehouse = Warehouse(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await warehouse.start()
        try:
            yield
        finally:
            await warehouse.stop()

    routes = [
        *api_routes(warehouse),
        *receiving_routes(warehouse),
        *control_routes(
            state=lambda: snapshot(warehouse.state),
            faults=warehouse.faults,
            counter=warehouse.counter,
            reset=warehouse.reset,
        ),
        *tpl_control_routes(warehouse),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.warehouse = warehouse
    return app
