"""An HTTP listener inside a service's process: uvicorn serving an ASGI app on the service's own
event loop, for webhook endpoints and consoles that sit beside the gRPC server.

uvicorn's own signal handling is switched off: the service's lifecycle (libs.lifecycle) owns
SIGTERM and SIGINT and stops the listener from its exit stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpListener:
    """uvicorn serving an ASGI app inside the service's event loop; an async context manager.

    Args:
        app: the ASGI app.
        host: address to bind.
        port: port to bind; 0 picks a free one (`port` holds the bound one after start).
        grace_s: seconds in-flight requests get on stop.
    """

    def __init__(self, app: Any, host: str, port: int, *, grace_s: float = 5.0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.grace_s = grace_s
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    async def __aenter__(self) -> HttpListener:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(self.grace_s) or 1,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http-listener")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError(f"HTTP listener on {self.host}:{self.port} did not start")
            await asyncio.sleep(0.005)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._socket is not None:
            self._socket.close()
