"""The `retail-mesh` command: `up` runs the whole mesh locally, `status` asks every service's health."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from tools.supervisor import CLEAN_EXITS, Mesh
from tools.topology import SERVICES, Topology


def _topology(args: argparse.Namespace) -> Topology:
    return Topology(data_dir=Path(args.data_dir).resolve(), nats_url=args.nats_url)


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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `retail-mesh` console script."""
    parser = argparse.ArgumentParser(prog="retail-mesh", description=__doc__)
    parser.add_argument("--data-dir", default=".mesh", help="where NATS, SQLite files and logs live")
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start NATS, the sandbox and every service; Ctrl-C stops them")
    up.add_argument("--no-sandbox", action="store_true", help="do not start the sandbox stand-ins")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for SERVING")
    commands.add_parser("status", help="gRPC health of every service")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    handler = {"up": _up, "status": _status}[args.command]
    sys.exit(asyncio.run(handler(args)))


if __name__ == "__main__":
    main()
