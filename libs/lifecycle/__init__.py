"""Process lifecycle shared by every service: the event loop, and the shutdown signal.

`__main__` hands `run` the service's `serve(settings)` coroutine; `serve` waits on
`shutdown_requested()` after entering everything into its exit stack, so SIGTERM (Kubernetes) and
SIGINT (Ctrl-C) unwind the stack in reverse: gRPC goes NOT_SERVING and drains, actors finish their
turns, NATS drains, the database closes.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a pinned dependency; stay runnable without it
    uvloop = None


def shutdown_requested() -> asyncio.Event:
    """An event set on the first SIGTERM or SIGINT; a second signal is left to the default handler."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()

    def _set(sig: signal.Signals) -> None:
        event.set()
        loop.remove_signal_handler(sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _set, sig)
    return event


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's top coroutine to completion on uvloop (asyncio's loop when unavailable)."""
    if uvloop is not None:
        uvloop.run(main)
    else:
        asyncio.run(main)
