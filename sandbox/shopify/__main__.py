"""Run the Shopify stand-in: ``python -m sandbox.shopify --port 8001 --seed 0 --webhook-secret ...``."""

from __future__ import annotations

import argparse
import json
import os

from pydantic import ValidationError

from sandbox.common.cli import add_fault_arguments, parse_faults
from sandbox.common.server import LOOPBACK, run
from sandbox.shopify.app import create_app
from sandbox.shopify.config import ShopifySettings
from sandbox.shopify.webhooks import DeliveryFaults

FAULTS_ENV = "SHOPIFY_SANDBOX_FAULTS"
WEBHOOK_FAULTS_ENV = "SHOPIFY_SANDBOX_WEBHOOK_FAULTS"


def _webhook_faults(value: str) -> dict:
    try:
        return DeliveryFaults.model_validate(json.loads(value)).model_dump(exclude_defaults=True)
    except (ValueError, ValidationError) as exc:
        raise argparse.ArgumentTypeError(f"invalid webhook delivery faults: {exc}") from None


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, build the app, serve until SIGINT/SIGTERM."""
    defaults = ShopifySettings()
    parser = argparse.ArgumentParser(prog="python -m sandbox.shopify", description=__doc__)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--shop-domain", default=defaults.shop_domain)
    parser.add_argument(
        "--access-token", default=os.environ.get("SHOPIFY_ACCESS_TOKEN", defaults.access_token)
    )
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("SHOPIFY_WEBHOOK_SECRET", defaults.webhook_secret),
        help="the app client secret that signs webhooks",
    )
    parser.add_argument("--throttle-capacity", type=float, default=defaults.throttle_capacity)
    parser.add_argument("--throttle-restore-rate", type=float, default=defaults.throttle_restore_rate)
    parser.add_argument(
        "--webhook-time-scale",
        type=float,
        default=defaults.webhook_time_scale,
        help="multiplies the retry back-off (1.0 = Shopify's ~4 hours)",
    )
    parser.add_argument(
        "--webhook-faults",
        type=_webhook_faults,
        metavar="JSON",
        help='delivery faults at start, e.g. \'{"duplicate_rate": 0.1, "reorder_rate": 0.05}\' '
        f"(also {WEBHOOK_FAULTS_ENV})",
    )
    add_fault_arguments(parser, env_var=FAULTS_ENV)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    try:
        faults = parse_faults(args)
        webhook_faults = args.webhook_faults
        if webhook_faults is None and os.environ.get(WEBHOOK_FAULTS_ENV, "").strip():
            webhook_faults = _webhook_faults(os.environ[WEBHOOK_FAULTS_ENV])
    except (ValueError, argparse.ArgumentTypeError) as exc:
        parser.error(f"{exc}")
    settings = ShopifySettings(
        seed=args.seed,
        shop_domain=args.shop_domain,
        access_token=args.access_token,
        webhook_secret=args.webhook_secret,
        throttle_capacity=args.throttle_capacity,
        throttle_restore_rate=args.throttle_restore_rate,
        webhook_time_scale=args.webhook_time_scale,
        faults=faults,
        webhook_faults=webhook_faults or {},
    )
    run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
