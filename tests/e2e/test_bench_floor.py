"""The burst scenario's receiver floor (`--systems null`, bench/peers/null.py) runs from the bench's
command line: its webhooks are timed by the Shopify stand-in like every system's, and only the
figures that mean something for a receiver that forgets are reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_receiver_floor_answers_every_webhook_of_a_burst(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "bench", "--scenario", "burst", "--systems", "null"]
    argv += ["--burst-orders", "40", "--deadline", "60", "--no-ceiling", "--no-write"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)

    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout.strip().splitlines()[-1])["runs"]["burst"]["null"]
    assert run["orders_placed"] > 0
    assert run["webhook_attempts"] == run["orders_placed"]
    assert run["webhook_failed_attempts"] == 0
    assert 0 < run["webhook_ack_p50_s"] <= run["webhook_ack_p99_s"] <= run["webhook_ack_max_s"]
    # Nothing that would only say it did nothing.
    assert run["lost_orders"] is None and run["acceptance_p99_s"] is None
    assert "answered" in done.stderr
