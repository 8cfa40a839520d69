"""Settings of the orders service: the shared ones plus its own, from the environment."""

from libs.config import Port, ServiceSettings


class OrdersSettings(ServiceSettings):
    """What the orders service reads at start (frozen; see `libs.config.ServiceSettings`).

    Attributes:
        service_name: Name in compose, k8s, metrics and traces.
        grpc_port: gRPC port (`GRPC_PORT`).
        metrics_port: Prometheus port (`METRICS_PORT`).
        inventory_addr: `host:port` of the inventory service (`INVENTORY_ADDR`).
    """

    service_name: str = "orders"
    grpc_port: Port = 50051
    metrics_port: Port = 9101
    inventory_addr: str = "127.0.0.1:50052"
