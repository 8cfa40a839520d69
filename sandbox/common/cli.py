"""Command-line pieces every ``python -m sandbox.<system>`` shares: faults given at start.

Each stand-in takes faults at start the same way, from two places, merged per operation:

- the environment variable ``<SYSTEM>_SANDBOX_FAULTS`` (``SHOPIFY_SANDBOX_FAULTS``,
  ``BC_SANDBOX_FAULTS``, ``TPL_SANDBOX_FAULTS``): a JSON object ``{"<operation>": {Fault fields}}``;
- ``--fault OP=JSON``, repeatable, e.g. ``--fault 'checkout={"error_rate": 0.1, "error_status": 429}'``;
  a flag replaces the environment's setting of the same operation.

The result goes into the settings field ``faults``, which each app hands to its
:class:`~sandbox.common.faults.FaultInjector` at start; ``/_sandbox/faults`` changes them later.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sandbox.common.faults import Fault

_ENV_DEST = "_faults_env"


def _validated(operation: str, spec: Any) -> dict[str, Any]:
    if not operation:
        raise ValueError("the operation name is empty")
    try:
        return Fault.model_validate(spec).model_dump(exclude_defaults=True)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'fault'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid fault for {operation!r}: {problems}") from None


def fault_option(value: str) -> tuple[str, dict[str, Any]]:
    """Parse one ``--fault OP=JSON`` value into ``(operation, fault fields)``.

    Raises:
        argparse.ArgumentTypeError: when the value is not ``OP=JSON`` or the JSON is not a valid fault.
    """
    operation, sep, spec = value.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected OP=JSON, got {value!r}")
    try:
        return operation.strip(), _validated(operation.strip(), json.loads(spec))
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"the fault for {operation!r} is not JSON: {exc}") from None
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_fault_arguments(parser: argparse.ArgumentParser, *, env_var: str) -> None:
    """Add ``--fault OP=JSON`` (repeatable) and remember ``env_var`` for :func:`parse_faults`.

    Args:
        parser: the stand-in's argument parser.
        env_var: the environment variable holding faults as JSON (``<SYSTEM>_SANDBOX_FAULTS``).
    """
    parser.add_argument(
        "--fault",
        action="append",
        type=fault_option,
        default=[],
        metavar="OP=JSON",
        help=f"a fault at start, repeatable ('*' = every operation), e.g. "
        f'--fault \'orders.create={{"error_rate": 0.1, "error_status": 429}}\'; '
        f"also {env_var}='{{\"OP\": {{...}}}}'",
    )
    parser.set_defaults(**{_ENV_DEST: env_var})


def parse_faults(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> dict[str, dict]:
    """The faults to start with: the environment variable's, then every ``--fault`` over them.

    Args:
        args: the parsed arguments of a parser that went through :func:`add_fault_arguments`.
        environ: the environment to read (default ``os.environ``).

    Returns:
        ``{"<operation>": {Fault fields}}``, ready for a settings field ``faults``.

    Raises:
        ValueError: when the environment variable is not a JSON object of valid faults.
    """
    environ = os.environ if environ is None else environ
    env_var = getattr(args, _ENV_DEST, None)
    faults: dict[str, dict[str, Any]] = {}
    raw = environ.get(env_var, "").strip() if env_var else ""
    if raw:
        try:
            loaded = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{env_var} is not JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f'{env_var} must be a JSON object {{"<operation>": {{...}}}}')
        faults.update({str(op): _validated(str(op), spec) for op, spec in loaded.items()})
    faults.update(dict(args.fault or []))
    return faults
