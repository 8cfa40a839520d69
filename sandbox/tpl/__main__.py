"""Run the 3PL stand-in: ``python -m sandbox.tpl --port 8003 --seed 0 --edi-dir .mesh/edi``."""

from __future__ import annotations

import argparse
from pathlib import Path

from sandbox.common.cli import add_fault_arguments, parse_faults
from sandbox.common.server import LOOPBACK, run
from sandbox.tpl.app import create_app
from sandbox.tpl.config import TplSettings

FAULTS_ENV = "TPL_SANDBOX_FAULTS"


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, build the settings, serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.tpl", description=__doc__)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=8003)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--edi-dir", type=Path, default=None, help="drop folders for EDI X12 mode")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplies every simulated delay")
    parser.add_argument(
        "--partial-rate", type=float, default=0.1, help="share of orders shipped in two parcels"
    )
    parser.add_argument(
        "--damaged-rate", type=float, default=0.2, help="chance each returned unit is damaged"
    )
    parser.add_argument("--inventory-advice-s", type=float, default=3600.0, help="846 period (0: on demand)")
    parser.add_argument("--no-simulate", action="store_true", help="only /_sandbox/advance moves orders")
    add_fault_arguments(parser, env_var=FAULTS_ENV)
    args = parser.parse_args(argv)
    try:
        faults = parse_faults(args)
    except ValueError as exc:
        parser.error(str(exc))
    settings = TplSettings(
        seed=args.seed,
        edi_dir=args.edi_dir,
        time_scale=args.time_scale,
        partial_shipment_rate=args.partial_rate,
        damaged_return_rate=args.damaged_rate,
        edi_inventory_advice_s=args.inventory_advice_s,
        simulate=not args.no_simulate,
        faults=faults,
    )
    run(create_app(settings), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
