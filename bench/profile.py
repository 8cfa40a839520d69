"""Where the mesh's CPU goes: py-spy on every service process during the measured load.

`python -m bench --profile` starts `py-spy record` (sampling, `--nonblocking`: the service is never
paused) on each of the mesh's Python processes when the first order is placed and stops it when
the settle wait ends. Each profile is reduced to the functions that hold the most busy samples
(inclusive: a function and everything it calls) and the leaf frames where the samples land
(exclusive). Only samples of the thread holding the GIL are taken (`--gil`), so a commit's fsync in
a worker thread or a wait in C is not counted as work. Idle samples are left out: the event loop
waiting in epoll (under uvloop the leaf Python frame is then the loop's runner), aiosqlite's worker
waiting for its next statement and an executor thread waiting for work. SQLAlchemy's async layer
runs its sync half in greenlets, whose stacks start at the ORM call (`Session.execute`), not at the
service code that made it. The result JSON gets the summary per process; the raw py-spy
files stay in the run's data folder with `--keep`.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

#: Leaf frames that are a process waiting, not working.
IDLE_LEAVES = (
    re.compile(r"^(_PollLike)?select \(.*selectors\.py:"),
    # uvloop waits in epoll in C: the leaf Python frame is the loop's runner
    re.compile(r"^Runner\.run \(.*asyncio/runners\.py:"),
    re.compile(r"^run \(.*uvloop/__init__\.py:"),
    re.compile(r"^_connection_worker_thread \(.*aiosqlite/core\.py:59\)"),
    re.compile(r"^wait \(.*threading\.py:"),
    # an executor thread waiting for work (SQLite commits run in the default executor)
    re.compile(r"^_worker \(.*concurrent/futures/thread\.py:"),
)
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>.*?):(?P<line>\d+)\)$")


def py_spy() -> str | None:
    """The py-spy executable of this environment (the `bench` extra installs it), if any."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy recorders for a set of processes.

    Args:
        pids: process name → pid (only Python processes: services, not nats-server or PostgreSQL).
        folder: where the raw profiles are written.
        rate: samples per second.
    """

    def __init__(self, pids: dict[str, int], folder: Path, *, rate: int = 100) -> None:
        self.pids = pids
        self.folder = folder
        self.rate = rate
        self._recorders: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        """Start one recorder per process."""
        executable = py_spy()
        if executable is None:
            raise RuntimeError("py-spy is not installed: `make bench` installs the bench extra")
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            output = str(self.folder / f"{name}.txt")
            self._recorders[name] = subprocess.Popen(
                [
                    executable,
                    "record",
                    "-p",
                    str(pid),
                    "-r",
                    str(self.rate),
                    "-f",
                    "raw",
                    "--nonblocking",
                    "--gil",  # only the thread holding the GIL: CPU spent in Python, not waits
                    "--full-filenames",
                    "-o",
                    output,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def stop(self) -> dict[str, Any]:
        """Stop the recorders (py-spy writes its file on SIGINT) and summarise each profile."""
        for recorder in self._recorders.values():
            if recorder.poll() is None:
                recorder.send_signal(signal.SIGINT)
        for recorder in self._recorders.values():
            try:
                recorder.wait(timeout=60)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait()
        summaries = {}
        for name in self._recorders:
            path = self.folder / f"{name}.txt"
            summaries[name] = summarize(path.read_text()) if path.exists() else {"samples": 0}
        self._recorders.clear()
        return summaries


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    where = match["file"]
    if "site-packages/" in where:
        where = where.split("site-packages/")[-1]
    elif re.search(r"/(libs|services|sandbox|bench|tools)/", where):
        where = re.sub(r"^.*?/(libs|services|sandbox|bench|tools)/", r"\1/", where)
    else:
        where = where.rsplit("/", 1)[-1]
    return f"{match['function']} ({where})"


def summarize(raw: str, *, top: int = 25) -> dict[str, Any]:
    """The busy samples of a py-spy raw profile, by function (inclusive) and by leaf (exclusive).

    Args:
        raw: py-spy's `-f raw` output: one `frame;frame;...;leaf count` line per distinct stack.
        top: how many functions to keep in each list.

    Returns:
        `{"samples": busy samples, "inclusive": [[share, function], ...], "leaves": [...]}`,
        shares of the busy samples, largest first.
    """
    busy = 0
    inclusive: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if any(pattern.match(frames[-1]) for pattern in IDLE_LEAVES):
            continue
        samples = int(count)
        busy += samples
        leaves[_short(frames[-1])] += samples
        for function in dict.fromkeys(_short(f) for f in frames):
            inclusive[function] += samples

    def shares(counter: collections.Counter[str]) -> list[list[Any]]:
        # A frame on nearly every busy stack (the module, the event loop) says nothing.
        telling = [(name, n) for name, n in counter.most_common() if n < 0.9 * busy]
        return [[round(n / busy, 3), name] for name, n in telling[:top]] if busy else []

    return {"samples": busy, "inclusive": shares(inclusive), "leaves": shares(leaves)}
