"""Settings of the tpl-adapter service: the shared ones plus its own, from the environment."""

from typing import Literal

from pydantic import SecretStr

from libs.config import Port, ServiceSettings


class TplAdapterSettings(ServiceSettings):
    """What the tpl-adapter service reads at start (frozen; see `libs.config.ServiceSettings`).

    Attributes:
        service_name: Name in compose, k8s, metrics and traces.
        grpc_port: gRPC port (`GRPC_PORT`).
        metrics_port: Prometheus port (`METRICS_PORT`).
        http_port: HTTP listener port (`HTTP_PORT`).
        orders_addr: `host:port` of the orders service (`ORDERS_ADDR`).
        inventory_addr: `host:port` of the inventory service (`INVENTORY_ADDR`).
        tpl_base_url: 3PL API root; the sandbox by default.
        tpl_api_token: 3PL bearer token (`TPL_API_TOKEN` or `_FILE`).
        tpl_channel_id: 3PL channel id sent with every order.
        tpl_mode: How orders reach the 3PL: its JSON API or EDI X12 drop folders.
        tpl_edi_dir: EDI mailbox folder (`inbound/`, `outbound/`); `<DATA_DIR>/edi` when unset.
    """

    service_name: str = "tpl-adapter"
    grpc_port: Port = 50058
    metrics_port: Port = 9108
    http_port: Port | None = 8082
    orders_addr: str = "127.0.0.1:50051"
    inventory_addr: str = "127.0.0.1:50052"
    tpl_base_url: str = "http://127.0.0.1:8003"
    tpl_api_token: SecretStr | None = None
    tpl_channel_id: str = "retail-mesh"
    tpl_mode: Literal["api", "edi"] = "api"
    tpl_edi_dir: str | None = None
