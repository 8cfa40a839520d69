"""Process lifecycle shared by every service: the event loop, and the shutdown signal.

`__main__` hands `run` the service's `serve(settings)` coroutine; `serve` enters everything into
its exit stack, then awaits `shutdown.wait()`. SIGTERM (Kubernetes) or SIGINT (Ctrl-C) then
unwinds the stack in reverse: gRPC goes NOT_SERVING and drains, NATS drains, the database closes.
A signal that arrives while the service is still starting (waiting for NATS, say) cancels the
start instead, so a stuck start never ignores SIGTERM. `Loop` (libs/lifecycle/loop.py) runs a
periodic job inside that exit stack.

Once started, a service moves what its start-up made (modules, protobuf descriptors, table
metadata, compiled statements, clients: some 150,000 objects) out of the garbage collector's
reach (`gc.freeze`, decision 0043), so a full collection under load walks only what was made
since instead of pausing the event loop for 0.1-0.45 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Coroutine
from typing import Any

from libs.lifecycle.loop import Loop

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a pinned dependency; stay runnable without it
    uvloop = None


class Shutdown:
    """Set by the first SIGTERM or SIGINT; see `shutdown_requested`."""

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self._event = asyncio.Event()
        self._task = task
        self._serving = False

    def request(self) -> None:
        """Ask the service to stop: unwind if it is serving, cancel its start otherwise."""
        if self._serving:
            self._event.set()
        else:
            self._task.cancel()

    @property
    def requested(self) -> bool:
        """True once a stop was asked for."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Mark the service as serving, set its start-up aside from the garbage collector
        (`freeze_start_up`), and wait until a stop is asked for."""
        self._serving = True
        freeze_start_up()
        await self._event.wait()


def freeze_start_up() -> None:
    """Collect the start-up's garbage once, then freeze every object left (decision 0043).

    Frozen objects are never examined again by any collection, so the full collections a busy
    service runs now and then no longer walk the whole process (0.1-0.45 s each on the 2-core VM,
    with the event loop stopped). Reference counting still frees a frozen object nobody refers
    to; only a reference cycle among start-up objects that becomes garbage later stays in memory
    (a bounded few, such as a database connection opened at start-up and later replaced).
    """
    gc.collect()
    gc.freeze()


def shutdown_requested() -> Shutdown:
    """Install SIGTERM and SIGINT handlers for the calling task.

    A repeated signal asks again (harmless); whoever must stop a stuck process sends SIGKILL after
    its grace period, as Kubernetes and `retail-mesh up` do.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("shutdown_requested() must be called from a task")
    shutdown = Shutdown(task)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shutdown.request)
    return shutdown


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's top coroutine on uvloop (asyncio's loop when unavailable).

    A start cancelled by a signal ends quietly: the exit stack has already closed what opened.
    """
    with contextlib.suppress(asyncio.CancelledError):
        if uvloop is not None:
            uvloop.run(main)
        else:
            asyncio.run(main)


__all__ = ["Loop", "Shutdown", "freeze_start_up", "run", "shutdown_requested"]
