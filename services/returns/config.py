"""Settings of the returns service: the shared ones plus its own, from the environment."""

from libs.config import Port, ServiceSettings


class ReturnsSettings(ServiceSettings):
    """What the returns service reads at start (frozen; see `libs.config.ServiceSettings`).

    Attributes:
        service_name: Name in compose, k8s, metrics and traces.
        grpc_port: gRPC port (`GRPC_PORT`).
        metrics_port: Prometheus port (`METRICS_PORT`).
    """

    service_name: str = "returns"
    grpc_port: Port = 50054
    metrics_port: Port = 9104
