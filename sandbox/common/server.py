"""Serving a stand-in: ``run`` for ``python -m sandbox.<system>``, ``serve_in_thread`` for tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

LOOPBACK = "127.0.0.1"


def run(app: Any, host: str = LOOPBACK, port: int = 8000, log_level: str = "info") -> None:
    """Serve ``app`` until SIGINT/SIGTERM (uvicorn installs the handlers)."""
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)


def _bound_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@contextlib.contextmanager
def serve_in_thread(app: Any, host: str = LOOPBACK, start_timeout_s: float = 10.0) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a background thread; yield its base URL.

    The port is bound before uvicorn starts (no race for a "free" port); the context waits until
    uvicorn reports it has started, polling against a deadline, and on exit asks it to stop and
    joins the thread.

    Raises:
        RuntimeError: when the server does not start (or dies) before ``start_timeout_s``.
    """
    sock = _bound_socket(host)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="auto", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox:{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox server on {host}:{port} did not start")
            time.sleep(0.005)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=start_timeout_s)
        sock.close()
