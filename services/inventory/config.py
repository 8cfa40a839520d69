"""Settings of the inventory service: the shared ones plus its own, from the environment."""

from pathlib import Path

from libs.config import Port, ServiceSettings

DEFAULT_POLICY = Path(__file__).resolve().parent / "policy.yaml"


class InventorySettings(ServiceSettings):
    """What the inventory service reads at start (frozen; see `libs.config.ServiceSettings`).

    Attributes:
        service_name: Name in compose, k8s, metrics and traces.
        grpc_port: gRPC port (`GRPC_PORT`).
        metrics_port: Prometheus port (`METRICS_PORT`).
        inventory_policy_file: Channel allocation, routing and reconciliation policy, YAML
            (`INVENTORY_POLICY_FILE`; default: the policy.yaml shipped with the service).
    """

    service_name: str = "inventory"
    grpc_port: Port = 50052
    metrics_port: Port = 9102
    inventory_policy_file: Path = DEFAULT_POLICY
