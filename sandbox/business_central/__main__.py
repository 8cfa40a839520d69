"""Run the Business Central stand-in: ``python -m sandbox.business_central --port 8002 --seed 0``."""

from __future__ import annotations

import argparse

from sandbox.business_central.app import create_app
from sandbox.business_central.config import BusinessCentralSettings
from sandbox.common.cli import add_fault_arguments, parse_faults
from sandbox.common.server import LOOPBACK, run

FAULTS_ENV = "BC_SANDBOX_FAULTS"


def main(argv: list[str] | None = None) -> None:
    """Parse flags over the ``BC_SANDBOX_*`` settings and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.business_central", description=__doc__)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--rate-limit", type=int, help="requests per window (BC: 6000)")
    parser.add_argument("--rate-window-s", type=float, help="window length (BC: 300)")
    add_fault_arguments(parser, env_var=FAULTS_ENV)
    args = parser.parse_args(argv)
    try:
        faults = parse_faults(args)
    except ValueError as exc:
        parser.error(str(exc))
    overrides: dict = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.rate_limit is not None:
        overrides["rate_limit"] = args.rate_limit
    if args.rate_window_s is not None:
        overrides["rate_window_s"] = args.rate_window_s
    if faults:
        overrides["faults"] = faults
    settings = BusinessCentralSettings(**overrides)
    run(create_app(settings), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
