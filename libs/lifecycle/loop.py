"""A background loop woken on demand and by a timer, entered into a service's exit stack.

Every periodic job of an adapter (webhook deliveries, inventory pushes, ERP and 3PL polls) is one
`Loop` around a `step`: errors are logged and the loop goes on; leaving the context cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Loop:
    """Runs `step` whenever woken, and every `interval_s` anyway; `step` returns True when it did
    work and should run again at once. Errors are logged and the loop goes on.

    Args:
        name: task name, for logs.
        step: one round of work.
        interval_s: the timer; 0 means only when woken.
        run_at_start: run a first round at once.
    """

    def __init__(
        self, name: str, step: Callable[[], Awaitable[bool]], interval_s: float, *, run_at_start: bool = True
    ) -> None:
        self.name = name
        self._step = step
        self.interval_s = interval_s
        self._wake = asyncio.Event()
        if run_at_start:
            self._wake.set()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Ask for a round now."""
        self._wake.set()

    async def __aenter__(self) -> Loop:
        self._task = asyncio.create_task(self._run(), name=self.name)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            if self.interval_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            else:
                await self._wake.wait()
            self._wake.clear()
            try:
                while await self._step():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: round failed", self.name)
