"""A gRPC health probe for container healthchecks: `python -m libs.rpc.probe --addr 127.0.0.1:50051`.

Exits 0 when the server answers SERVING for `--service` (the whole server by default), 1
otherwise, 2 when unreachable. Kubernetes uses its native `grpc:` probe instead; compose needs
this command because Docker healthchecks run a process.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(addr: str, service: str = "", timeout: float = 2.0) -> int:
    """Return 0 if `service` at `addr` is SERVING, 1 if it answers otherwise, 2 if unreachable."""
    with grpc.insecure_channel(addr) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as error:
            print(f"{addr}: {error.code().name}", file=sys.stderr)
            return 2
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{addr} {service or '(server)'}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True, help="host:port of the gRPC server")
    parser.add_argument("--service", default="", help="full service name; empty for the server")
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args(argv)
    sys.exit(check(args.addr, args.service, args.timeout))


if __name__ == "__main__":
    main()
