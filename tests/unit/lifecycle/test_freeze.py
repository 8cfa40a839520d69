"""A started service sets its start-up aside from the garbage collector (decision 0043).

Each case runs in a fresh interpreter: freezing the test process would keep every later test's
objects out of its collections.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_what_start_up_left_is_frozen_and_its_garbage_collected_first():
    out = _run(
        """
        import gc, weakref
        from libs.lifecycle import freeze_start_up

        class Node:
            pass

        kept = [Node() for _ in range(1000)]
        cycle = Node(); cycle.me = cycle
        gone = weakref.ref(cycle)
        del cycle

        freeze_start_up()
        listed = {id(o) for o in gc.get_objects()}  # the collector's generations, frozen ones apart
        print(gone() is None, gc.get_freeze_count() >= 1000, not any(id(n) in listed for n in kept))
        """
    )
    assert out == "True True True"


def test_a_service_freezes_once_it_waits_for_its_stop():
    out = _run(
        """
        import asyncio, gc
        from libs.lifecycle import shutdown_requested

        async def serve():
            shutdown = shutdown_requested()
            before = gc.get_freeze_count()
            asyncio.get_running_loop().call_soon(shutdown.request)
            await shutdown.wait()
            print(before == 0, gc.get_freeze_count() > 0)

        asyncio.run(serve())
        """
    )
    assert out == "True True"
