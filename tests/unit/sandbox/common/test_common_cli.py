"""The shared start-up fault options: ``--fault OP=JSON`` and ``<SYSTEM>_SANDBOX_FAULTS``."""

from __future__ import annotations

import argparse

import pytest

from sandbox.common.cli import add_fault_arguments, parse_faults


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stand-in", exit_on_error=False)
    add_fault_arguments(parser, env_var="THING_SANDBOX_FAULTS")
    return parser


def test_repeated_fault_flags_configure_one_operation_each() -> None:
    args = _parser().parse_args(
        ["--fault", 'orders.create={"error_rate": 1, "error_status": 429}', "--fault", '*={"latency_ms": 5}']
    )

    faults = parse_faults(args, environ={})

    assert faults == {"orders.create": {"error_rate": 1.0, "error_status": 429}, "*": {"latency_ms": 5}}


def test_environment_faults_apply_and_a_flag_replaces_the_same_operation() -> None:
    environ = {
        "THING_SANDBOX_FAULTS": '{"orders.create": {"timeout_rate": 1}, "orders.get": {"latency_ms": 7}}'
    }
    args = _parser().parse_args(["--fault", 'orders.create={"drop_response_rate": 1}'])

    faults = parse_faults(args, environ=environ)

    assert faults == {"orders.create": {"drop_response_rate": 1.0}, "orders.get": {"latency_ms": 7}}


def test_no_flag_and_no_environment_means_no_fault() -> None:
    assert parse_faults(_parser().parse_args([]), environ={"OTHER_SANDBOX_FAULTS": '{"x": {}}'}) == {}


@pytest.mark.parametrize(
    "value",
    [
        "orders.create",
        'orders.create={"error_rate": 2}',
        'orders.create={"no_such_knob": 1}',
        "orders.create={not json",
        '={"latency_ms": 1}',
    ],
)
def test_a_bad_fault_flag_is_a_usage_error_naming_the_problem(value: str, capsys) -> None:
    parser = argparse.ArgumentParser(prog="stand-in")
    add_fault_arguments(parser, env_var="THING_SANDBOX_FAULTS")

    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--fault", value])

    assert exited.value.code == 2
    assert "argument --fault" in capsys.readouterr().err


@pytest.mark.parametrize("raw", ["[1, 2]", "{not json", '{"orders.create": {"error_status": 200}}'])
def test_a_bad_environment_value_names_the_variable_or_the_operation(raw: str) -> None:
    args = _parser().parse_args([])

    with pytest.raises(ValueError, match=r"THING_SANDBOX_FAULTS|orders\.create"):
        parse_faults(args, environ={"THING_SANDBOX_FAULTS": raw})
