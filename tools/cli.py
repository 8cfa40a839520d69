"""The `retail-mesh` command: `up` runs the whole mesh locally, `status` asks every service's health,
`order` shows one order's status history and timeline, `checkout` places a demo order."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from libs.bus.embedded import free_port
from tools.supervisor import CLEAN_EXITS, Mesh
from tools.topology import SERVICES, Topology


def _topology(args: argparse.Namespace) -> Topology:
    data_dir = Path(args.data_dir).resolve()
    if getattr(args, "free_ports", False):
        return Topology.with_free_ports(data_dir, f"nats://127.0.0.1:{free_port()}")
    return Topology(data_dir=data_dir, nats_url=args.nats_url)


async def _up(args: argparse.Namespace) -> int:
    mesh = Mesh(_topology(args), with_sandbox=not args.no_sandbox)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"starting retail-mesh (data in {mesh.topology.data_dir}) ...", flush=True)
    try:
        start = asyncio.create_task(mesh.start(timeout=args.timeout))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({start, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if start in done:
            start.result()
            print(mesh.table(), flush=True)
            print("\nevery service is SERVING; Ctrl-C stops the mesh", flush=True)
            await stop.wait()
        else:
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await start
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        await mesh.stop()
        return 1
    finally:
        stopper.cancel()
    print("stopping ...", flush=True)
    codes = await mesh.stop()
    unclean = {name: code for name, code in codes.items() if code is not None and code not in CLEAN_EXITS}
    print("stopped" + (f"; unclean exits: {unclean}" if unclean else " cleanly"), flush=True)
    return 0


async def _status(args: argparse.Namespace) -> int:
    mesh = Mesh(_topology(args))
    statuses = await asyncio.gather(*(mesh.health(s) for s in SERVICES))
    for spec, status in zip(SERVICES, statuses, strict=True):
        print(f"{spec.name:<16} {mesh.topology.host}:{spec.grpc_port:<6} {status}")
    return 0 if all(s == "SERVING" for s in statuses) else 1


async def _order(args: argparse.Namespace) -> int:
    import grpc

    from retail.common.v1 import common_pb2
    from retail.orders.v1 import orders_pb2, orders_service_pb2, orders_service_pb2_grpc

    async with grpc.aio.insecure_channel(args.orders_addr) as channel:
        stub = orders_service_pb2_grpc.OrdersServiceStub(channel)
        try:
            reply = await stub.GetOrder(
                orders_service_pb2.GetOrderRequest(order_id=args.order_id, include_timeline=True), timeout=5
            )
        except grpc.aio.AioRpcError as error:
            print(f"{args.order_id}: {error.code().name} {error.details()}", file=sys.stderr)
            return 1
    order = reply.order
    status = orders_pb2.OrderStatus.Name(order.status).removeprefix("ORDER_STATUS_")
    print(f"order {order.order_id}  status {status}  version {order.version}")
    print("\nstatus history")
    for change in order.status_history:
        source = common_pb2.SourceSystem.Name(change.source_system).removeprefix("SOURCE_SYSTEM_")
        to = orders_pb2.OrderStatus.Name(change.to_status).removeprefix("ORDER_STATUS_")
        print(f"  {change.occurred_at.ToDatetime():%Y-%m-%d %H:%M:%S}  {to:<18} by {source:<8} {change.note}")
    print("\ntimeline")
    for entry in reply.timeline:
        outcome = common_pb2.HopOutcome.Name(entry.outcome).removeprefix("HOP_OUTCOME_")
        at = entry.occurred_at.ToDatetime()
        print(f"  {at:%Y-%m-%d %H:%M:%S}  {entry.type:<28} {outcome:<10} {entry.summary}")
    if reply.timeline and reply.timeline[0].correlation_id:
        print(f"\ncorrelation id {reply.timeline[0].correlation_id} (search it in Jaeger or the logs)")
    return 0


async def _checkout(args: argparse.Namespace) -> int:
    import httpx

    lines = []
    for item in args.sku:
        sku, _, quantity = item.partition(":")
        lines.append({"sku": sku, "quantity": int(quantity or 1)})
    async with httpx.AsyncClient(timeout=10) as http:
        reply = await http.post(f"{args.shopify_url}/_sandbox/checkout", json={"lines": lines})
    if reply.status_code != 201:
        print(f"checkout refused: {reply.status_code} {reply.text}", file=sys.stderr)
        return 1
    order = reply.json()["order"]
    print(f"placed Shopify order {order['name']} (id {order['id']}); in the mesh: shp-{order['id']}")
    print(f"follow it with: retail-mesh order shp-{order['id']}")
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `retail-mesh` console script."""
    parser = argparse.ArgumentParser(prog="retail-mesh", description=__doc__)
    parser.add_argument("--data-dir", default=".mesh", help="where NATS, SQLite files and logs live")
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start NATS, the sandbox and every service; Ctrl-C stops them")
    up.add_argument("--no-sandbox", action="store_true", help="do not start the sandbox stand-ins")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for SERVING")
    up.add_argument(
        "--free-ports",
        action="store_true",
        help="free ports for NATS, the sandbox and every service instead of the defaults (the table "
        "shows them): a second mesh beside another, or tests",
    )
    commands.add_parser("status", help="gRPC health of every service")
    order = commands.add_parser("order", help="one order's status history and timeline")
    order.add_argument("order_id", help="the mesh's order id, e.g. shp-1234567890")
    order.add_argument("--orders-addr", default="127.0.0.1:50051")
    checkout = commands.add_parser("checkout", help="place a demo order on the Shopify stand-in")
    checkout.add_argument("--sku", action="append", default=[], help="SKU[:QUANTITY], repeatable")
    checkout.add_argument("--shopify-url", default="http://127.0.0.1:8001")
    args = parser.parse_args(argv)
    if args.command == "checkout" and not args.sku:
        args.sku = ["SKU-1001:1", "SKU-1002:2"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    handler = {"up": _up, "status": _status, "order": _order, "checkout": _checkout}[args.command]
    sys.exit(asyncio.run(handler(args)))


if __name__ == "__main__":
    main()
