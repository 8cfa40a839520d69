"""The gRPC server every service runs: servicers, health, reflection, interceptors, graceful stop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from libs.config import ServiceSettings
from libs.rpc.auth import ScopeMap, TokenVerifier
from libs.rpc.interceptors import default_interceptors
from libs.rpc.tls import server_credentials

log = logging.getLogger(__name__)

#: `add_XServicer_to_server` from generated code, or any function registering handlers on a server.
AddFn = Callable[[Any, grpc.aio.Server], None]

_HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class RpcServer:
    """A grpc.aio server with the mesh's interceptors, the reference health service and reflection.

    Usage, in a service's `app.py`:

        server = RpcServer(
            settings,
            servicers=[(orders_pb2_grpc.add_OrderServiceServicer_to_server, OrderServiceServicer(...))],
            service_names=[orders_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name],
            scopes={"/retail.orders.v1.OrderService/*": "orders:write"},
        )
        await stack.enter_async_context(server)   # start(); stop(grace) on exit

    Attributes:
        port: The bound port (the real one when GRPC_PORT is 0), known after `start()`.
        health: The health servicer; set a service NOT_SERVING when a dependency is lost.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        servicers: Sequence[tuple[AddFn, Any]],
        service_names: Sequence[str],
        scopes: ScopeMap | None = None,
        verifier: TokenVerifier | None = None,
        interceptors: Sequence[grpc.aio.ServerInterceptor] | None = None,
        credentials: grpc.ServerCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """Describe the server; nothing binds until `start()`.

        Args:
            settings: Host, port, limits, TLS and auth keys.
            servicers: `(add_fn, servicer)` pairs.
            service_names: Full names of the services the servicers implement, for health and
                reflection (`retail.orders.v1.OrderService`).
            scopes: Method-to-scope map used when authentication is on.
            verifier: Token verifier; by default built from MESH_AUTH_KEYS (None there: auth off).
            interceptors: Replaces the standard chain from `default_interceptors` entirely.
            credentials: Replaces TLS credentials built from TLS_CERT/TLS_KEY/TLS_CA.
            options: Extra server options, appended last so they win.
        """
        self._settings = settings
        self._servicers = list(servicers)
        self._service_names = list(service_names)
        if interceptors is None:
            verifier = verifier if verifier is not None else TokenVerifier.from_settings(settings)
            interceptors = default_interceptors(verifier=verifier, scopes=scopes)
        self._interceptors = list(interceptors)
        self._credentials = credentials if credentials is not None else server_credentials(settings)
        self._options = list(options)
        self.health = health.aio.HealthServicer()
        self.port: int | None = None
        self._server: grpc.aio.Server | None = None

    async def start(self) -> int:
        """Bind, register everything, mark every service SERVING and start serving.

        Returns:
            The bound port.
        """
        settings = self._settings
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
            ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
            # Accept the keepalive pings libs.rpc.client sends every 30 s, also between calls.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 20_000),
            # SO_REUSEPORT would let two processes share a port and split traffic by surprise.
            ("grpc.so_reuseport", 0),
            *self._options,
        ]
        server = grpc.aio.server(
            interceptors=self._interceptors,
            options=options,
            maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
        )
        for add, servicer in self._servicers:
            add(servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            [*self._service_names, _HEALTH_SERVICE, reflection.SERVICE_NAME], server
        )
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        if self._credentials is not None:
            port = server.add_secure_port(address, self._credentials)
        else:
            port = server.add_insecure_port(address)
        await server.start()
        for name in ("", *self._service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server, self.port = server, port
        log.info("gRPC server listening", extra={"address": f"{settings.grpc_host}:{port}"})
        return port

    async def mark_not_serving(self) -> None:
        """Answer NOT_SERVING for every service from now on, so balancers and probes stop sending work."""
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float | None = None) -> None:
        """Mark NOT_SERVING, then stop: refuse new calls and give in-flight ones `grace` seconds.

        Args:
            grace: Seconds for in-flight calls; SHUTDOWN_GRACE_S by default.
        """
        if self._server is None:
            return
        await self.mark_not_serving()
        await self._server.stop(self._settings.shutdown_grace_s if grace is None else grace)
        self._server = None

    async def wait_for_termination(self) -> None:
        """Wait until the server stops."""
        if self._server is not None:
            await self._server.wait_for_termination()

    async def __aenter__(self) -> RpcServer:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the server with the configured grace."""
        await self.stop()
