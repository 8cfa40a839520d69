"""Run the Business Central stand-in: ``python -m sandbox.business_central --port 8002 --seed 0``."""

from __future__ import annotations

import argparse
import json

from sandbox.business_central.app import create_app
from sandbox.business_central.config import BusinessCentralSettings
from sandbox.common.server import LOOPBACK, run


def main() -> None:
    """Parse flags over the ``BC_SANDBOX_*`` settings and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.business_central", description=__doc__)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--rate-limit", type=int, help="requests per window (BC: 6000)")
    parser.add_argument("--rate-window-s", type=float, help="window length (BC: 300)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="OP=JSON",
        help='e.g. --fault \'salesOrders.create={"error_rate": 0.1, "error_status": 429}\'',
    )
    args = parser.parse_args()
    overrides: dict = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.rate_limit is not None:
        overrides["rate_limit"] = args.rate_limit
    if args.rate_window_s is not None:
        overrides["rate_window_s"] = args.rate_window_s
    if args.fault:
        overrides["faults"] = {op: json.loads(spec) for op, _, spec in (f.partition("=") for f in args.fault)}
    settings = BusinessCentralSettings(**overrides)
    run(create_app(settings), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
