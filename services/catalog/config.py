"""Settings of the catalog service: the shared ones plus its own, from the environment."""

from libs.config import Port, ServiceSettings


class CatalogSettings(ServiceSettings):
    """What the catalog service reads at start (frozen; see `libs.config.ServiceSettings`).

    Attributes:
        service_name: Name in compose, k8s, metrics and traces.
        grpc_port: gRPC port (`GRPC_PORT`).
        metrics_port: Prometheus port (`METRICS_PORT`).
    """

    service_name: str = "catalog"
    grpc_port: Port = 50055
    metrics_port: Port = 9105
