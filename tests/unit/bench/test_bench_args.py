"""The bench's command line: the receiver floor runs only where it means something; mesh settings."""

from __future__ import annotations

import pytest

from bench.__main__ import parse


def test_the_receiver_floor_alone_is_refused_outside_the_burst():
    with pytest.raises(SystemExit):
        parse(["--scenario", "sustained", "--systems", "null"])


def test_the_receiver_floor_is_a_default_system_and_runs_with_the_burst():
    assert parse([]).systems == ["mesh", "inline", "celery", "null"]
    assert parse(["--scenario", "burst", "--systems", "null"]).systems == ["null"]


def test_mesh_settings_are_kept_in_the_parameters_and_malformed_ones_refused():
    args = parse(["--mesh-setting", "MOVE_FULFILLMENT_ORDERS=true", "--mesh-setting", "X_Y=a=b"])
    assert args.mesh_setting == ["MOVE_FULFILLMENT_ORDERS=true", "X_Y=a=b"]
    assert parse([]).mesh_setting == []
    for bad in ("MOVE_FULFILLMENT_ORDERS", "move=true", "=1", "A B=1"):
        with pytest.raises(SystemExit):
            parse(["--mesh-setting", bad])
