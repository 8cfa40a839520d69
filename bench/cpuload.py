"""CPU accounting: what each system's processes, the stand-ins and the load generator spent, and when.

`cpu_seconds` sums user and system CPU (`/proc/<pid>/stat`, reaped children included) over
processes and their descendants, which psutil finds. A `CpuTimeline` samples each group of
processes four times a second during a run, so a figure can say how busy the machine was while
something happened: `busy_cores` is the mean number of cores a group kept busy between two
moments. Finding descendants walks every process of the box (about 2 ms a process here), too much
four times a second; the timeline finds them once at start and then reads `/proc` alone (a process
started later, such as a PostgreSQL backend, is not in it; the run's totals still count it). On
the 2-core VM it tells whether the box was saturated while orders were being accepted, and how the
cores were shared between the system, the stand-ins and the bench's own load generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psutil

#: Seconds between samples.
SAMPLE_EVERY_S = 0.25
#: The group name of the bench's own process (load generator, stand-in reads, this sampler).
LOAD = "load"


_TICKS = os.sysconf("SC_CLK_TCK")


def _with_descendants(pids: Sequence[int]) -> list[int]:
    found: list[int] = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            found += [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    return list(dict.fromkeys(found))


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of these processes, their live descendants and the children they
    have reaped."""
    return sum(map(_proc_cpu_seconds, _with_descendants(pids)))


def _proc_cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of `pid` from /proc (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return sum(int(f) for f in fields[11:15]) / _TICKS


class CpuTimeline:
    """Samples the CPU seconds of named groups of processes, plus this process as `load`.

    Args:
        groups: group name → the processes whose CPU it counts (with their descendants).
    """

    def __init__(self, groups: Mapping[str, Sequence[int]]) -> None:
        self.groups = {name: _with_descendants(pids) for name, pids in groups.items()}
        #: (Unix time, {group: CPU seconds so far}), oldest first.
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        """Take one sample now."""
        totals = {name: sum(map(_proc_cpu_seconds, pids)) for name, pids in self.groups.items()}
        totals[LOAD] = time.process_time()
        self.samples.append((time.time(), totals))

    def start(self) -> None:
        """Sample now and then every `SAMPLE_EVERY_S` until `stop`."""
        self.sample()
        self._task = asyncio.create_task(self._run(), name="cpu-timeline")

    async def stop(self) -> None:
        """Stop sampling, after one last sample."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.sample()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_EVERY_S)
            self.sample()

    def as_json(self, since: float) -> list[dict[str, Any]]:
        """The samples as cores busy per group in each interval, times relative to `since`."""
        rows = []
        for (t0, a), (t1, b) in zip(self.samples, self.samples[1:], strict=False):
            span = t1 - t0
            if span > 0:
                rows.append({"t": round(t1 - since, 3)} | {g: round((b[g] - a[g]) / span, 3) for g in b})
        return rows


def busy_cores(
    samples: Sequence[tuple[float, Mapping[str, float]]], start: float, end: float
) -> dict[str, float]:
    """Mean cores each group kept busy from `start` to `end` (Unix times), from the samples nearest
    inside that span; empty when fewer than two samples fall in it."""
    inside = [s for s in samples if start - SAMPLE_EVERY_S / 2 <= s[0] <= end + SAMPLE_EVERY_S / 2]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return {}
    (t0, first), (t1, last) = inside[0], inside[-1]
    return {group: round((last[group] - first[group]) / (t1 - t0), 3) for group in last}
