"""What runs in the mesh: every service and sandbox system, its module, ports and peers.

The names, ports and environment variables here are the ones in docs/architecture.md,
compose.yaml and k8s/; `retail-mesh up` and the end-to-end tests start processes from this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from libs.bus.embedded import free_port


@dataclass(frozen=True)
class ServiceSpec:
    """One mesh service: its name (as in compose and k8s), module and default ports.

    Attributes:
        name: service name, e.g. `shopify-adapter`.
        grpc_port: gRPC port (health, reflection and the v1 service).
        metrics_port: Prometheus metrics port.
        http_port: extra HTTP port (webhooks, console) or None.
        peers: names of services whose gRPC address this one needs (`<PEER>_ADDR`).
    """

    name: str
    grpc_port: int
    metrics_port: int
    http_port: int | None = None
    peers: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        """The module run with `python -m`."""
        return "services." + self.name.replace("-", "_")

    @property
    def addr_env(self) -> str:
        """The variable other services read this service's address from, e.g. `INVENTORY_ADDR`."""
        return self.name.replace("-", "_").upper() + "_ADDR"


@dataclass(frozen=True)
class SandboxSpec:
    """One sandbox system (an external system's stand-in) and its HTTP port."""

    name: str
    module: str
    port: int
    url_env: str
    args: tuple[str, ...] = ()


#: The sandbox's published development credentials (see sandbox/README.md); never real ones.
#: Under `make run` the adapters get these, so they talk to the stand-ins exactly as they would to
#: the real systems with real credentials.
SANDBOX_CREDENTIALS: Mapping[str, str] = {
    "SHOPIFY_ACCESS_TOKEN": "shpat_sandbox_token",
    "SHOPIFY_WEBHOOK_SECRETS": "sandbox_webhook_secret",
    "SHOPIFY_SHOP_DOMAINS": "retail-mesh-demo.myshopify.com",
    "BC_CLIENT_ID": "retail-mesh",
    "BC_CLIENT_SECRET": "sandbox-secret",
    "TPL_API_TOKEN": "sandbox-tpl-token",
}

SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("orders", 50051, 9101, peers=("inventory",)),
    ServiceSpec("inventory", 50052, 9102),
    ServiceSpec("shipments", 50053, 9103),
    ServiceSpec("returns", 50054, 9104),
    ServiceSpec("catalog", 50055, 9105),
    ServiceSpec("shopify-adapter", 50056, 9106, http_port=8080, peers=("orders", "inventory")),
    ServiceSpec("erp-adapter", 50057, 9107, peers=("orders", "inventory")),
    ServiceSpec("tpl-adapter", 50058, 9108, http_port=8082, peers=("orders", "inventory", "shipments")),
    ServiceSpec("ops", 50059, 9109, http_port=8090, peers=("orders",)),
)

SANDBOX: tuple[SandboxSpec, ...] = (
    SandboxSpec("shopify", "sandbox.shopify", 8001, "SHOPIFY_BASE_URL"),
    SandboxSpec("business-central", "sandbox.business_central", 8002, "BC_BASE_URL"),
    SandboxSpec("tpl", "sandbox.tpl", 8003, "TPL_BASE_URL", args=("--edi-dir", "{data_dir}/edi")),
)


@dataclass(frozen=True)
class Topology:
    """A concrete layout: ports for every service and sandbox system, the NATS URL, the data dir."""

    data_dir: Path
    nats_url: str
    services: tuple[ServiceSpec, ...] = SERVICES
    sandbox: tuple[SandboxSpec, ...] = SANDBOX
    host: str = "127.0.0.1"
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: Per-service database URLs (PostgreSQL); services not named keep their SQLite file.
    database_urls: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def with_free_ports(cls, data_dir: Path, nats_url: str, **kwargs: object) -> Topology:
        """The default layout with every port replaced by a free one (tests, parallel meshes)."""
        services = tuple(
            replace(
                s,
                grpc_port=free_port(),
                metrics_port=free_port(),
                http_port=free_port() if s.http_port else None,
            )
            for s in SERVICES
        )
        sandbox = tuple(replace(s, port=free_port()) for s in SANDBOX)
        return cls(data_dir=data_dir, nats_url=nats_url, services=services, sandbox=sandbox, **kwargs)  # type: ignore[arg-type]

    def service(self, name: str) -> ServiceSpec:
        """The spec of service `name`."""
        return next(s for s in self.services if s.name == name)

    def env_for(self, spec: ServiceSpec) -> dict[str, str]:
        """The environment a service process starts with under the embedded defaults."""
        env = {
            "SERVICE_NAME": spec.name,
            "OTEL_SERVICE_NAME": spec.name,
            "GRPC_HOST": self.host,
            "GRPC_PORT": str(spec.grpc_port),
            "METRICS_PORT": str(spec.metrics_port),
            "NATS_URL": self.nats_url,
            "DATA_DIR": str(self.data_dir),
            "DATABASE_URL": self.database_urls.get(
                spec.name, f"sqlite+aiosqlite:///{self.data_dir / (spec.name + '.db')}"
            ),
        }
        if spec.http_port is not None:
            env["HTTP_PORT"] = str(spec.http_port)
        for peer in self.services:
            env[peer.addr_env] = f"{self.host}:{peer.grpc_port}"
        for system in self.sandbox:
            env[system.url_env] = f"http://{self.host}:{system.port}"
        env.update(SANDBOX_CREDENTIALS)
        env["TPL_EDI_DIR"] = str(self.data_dir / "edi")
        for adapter, variable, path in (
            ("shopify-adapter", "SHOPIFY_WEBHOOK_CALLBACK_URL", "/webhooks/shopify"),
            ("tpl-adapter", "TPL_WEBHOOK_CALLBACK_URL", "/webhooks/tpl"),
        ):
            env[variable] = f"http://{self.host}:{self.service(adapter).http_port}{path}"
        env.update(self.extra_env)
        return env
