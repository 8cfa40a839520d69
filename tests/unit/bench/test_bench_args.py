"""The bench's command line: the receiver floor runs only where it means something."""

from __future__ import annotations

import pytest

from bench.__main__ import parse


def test_the_receiver_floor_alone_is_refused_outside_the_burst():
    with pytest.raises(SystemExit):
        parse(["--scenario", "sustained", "--systems", "null"])


def test_the_receiver_floor_is_a_default_system_and_runs_with_the_burst():
    assert parse([]).systems == ["mesh", "inline", "celery", "null"]
    assert parse(["--scenario", "burst", "--systems", "null"]).systems == ["null"]
