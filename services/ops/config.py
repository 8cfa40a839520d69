"""Settings of the ops service: the shared ones plus its own, from the environment."""

from libs.config import Port, ServiceSettings


class OpsSettings(ServiceSettings):
    """What the ops service reads at start (frozen; see `libs.config.ServiceSettings`).

    Attributes:
        service_name: Name in compose, k8s, metrics and traces.
        grpc_port: gRPC port (`GRPC_PORT`).
        metrics_port: Prometheus port (`METRICS_PORT`).
        http_port: HTTP listener port (`HTTP_PORT`).
        orders_addr: `host:port` of the orders service (`ORDERS_ADDR`).
    """

    service_name: str = "ops"
    grpc_port: Port = 50059
    metrics_port: Port = 9109
    http_port: Port | None = 8090
    orders_addr: str = "127.0.0.1:50051"
