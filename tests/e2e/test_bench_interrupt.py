"""`make bench` stopped halfway (SIGTERM from a CI timeout or `kill`) leaves no process behind:
the mesh's services, nats-server and the stand-ins it started all stop with it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_terminated_bench_stops_every_process_it_started(tmp_path: Path) -> None:
    log = tmp_path / "bench.log"
    with log.open("wb") as sink:
        bench = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench",
                "--quick",
                "--scenario",
                "sustained",
                "--systems",
                "mesh",
                "--orders",
                "20",
                "--no-ceiling",
                "--no-write",
            ],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 180
        while b"placing" not in log.read_bytes():
            assert bench.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the bench never started placing orders"
            time.sleep(0.2)
        started = psutil.Process(bench.pid).children(recursive=True)
        names = {" ".join(p.cmdline()[1:3]) for p in started if _alive(p)}
        assert any("services.orders" in n for n in names) and any("nats-server" in n for n in names)

        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=90) == 130, log.read_text()[-3000:]

        _, alive = psutil.wait_procs(started, timeout=30)
        assert [p for p in alive if _alive(p)] == []
        assert "interrupted" in log.read_text()
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for orphan in started:  # only when the test failed: leave nothing running either way
            if _alive(orphan):
                orphan.kill()
