"""The bench's CPU timeline: cores busy per group between two moments."""

from __future__ import annotations

import asyncio
import sys

from bench.cpuload import LOAD, CpuTimeline, busy_cores, cpu_seconds


def test_busy_cores_is_the_cpu_spent_in_the_span_over_its_length():
    samples = [
        (10.0, {"system": 1.0, "sandbox": 0.0}),
        (11.0, {"system": 2.5, "sandbox": 0.5}),
        (12.0, {"system": 4.0, "sandbox": 0.75}),
        (20.0, {"system": 4.0, "sandbox": 0.75}),
    ]

    assert busy_cores(samples, 10.0, 12.0) == {"system": 1.5, "sandbox": 0.375}
    # Samples outside the span are left out (the idle tail would dilute the figure).
    assert busy_cores(samples, 11.0, 12.0) == {"system": 1.5, "sandbox": 0.25}


def test_a_span_with_fewer_than_two_samples_has_no_figure():
    samples = [(10.0, {"system": 1.0}), (20.0, {"system": 2.0})]

    assert busy_cores(samples, 14.0, 16.0) == {}
    assert busy_cores([], 0.0, 1.0) == {}


def test_the_timeline_counts_a_busy_child_process_and_this_process_as_load():
    # The child spins for 0.6 s of CPU, says so, then waits to be told to exit: a process that is
    # gone has no CPU times to read, and the mesh's processes run until the bench has its figures.
    spin = "import sys, time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"
    spin += "print('spun', flush=True)\nsys.stdin.read()"

    async def scenario():
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", spin, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        timeline = CpuTimeline({"system": [child.pid]})
        timeline.start()
        assert await asyncio.wait_for(child.stdout.readline(), 30) == b"spun\n"
        await timeline.stop()
        child.stdin.close()
        await child.wait()
        return timeline

    timeline = asyncio.run(scenario())

    first, last = timeline.samples[0], timeline.samples[-1]
    assert len(timeline.samples) >= 2
    assert last[1]["system"] - first[1]["system"] >= 0.3  # the child spun for 0.6 s of CPU
    assert LOAD in last[1]
    rows = timeline.as_json(since=first[0])
    assert rows and {"t", "system", LOAD} <= set(rows[0])


def test_cpu_seconds_of_a_process_that_does_not_exist_is_nothing():
    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    assert cpu_seconds([pid_max + 1]) == 0.0
