"""Settings of the tpl-adapter service: the shared ones plus its own, from the environment."""

from typing import Literal

from pydantic import Field, SecretStr

from libs.config import Port, ServiceSettings


class TplAdapterSettings(ServiceSettings):
    """What the tpl-adapter service reads at start (frozen; see `libs.config.ServiceSettings`).

    Attributes:
        service_name: Name in compose, k8s, metrics and traces.
        grpc_port: gRPC port (`GRPC_PORT`).
        metrics_port: Prometheus port (`METRICS_PORT`).
        http_port: HTTP listener port (`HTTP_PORT`): the 3PL's webhooks at `/webhooks/tpl`.
        http_host: Address the HTTP listener binds.
        orders_addr: `host:port` of the orders service (`ORDERS_ADDR`).
        inventory_addr: `host:port` of the inventory service (`INVENTORY_ADDR`).
        shipments_addr: `host:port` of the shipments service (`SHIPMENTS_ADDR`).
        tpl_base_url: 3PL API root; the sandbox by default.
        tpl_api_version: Date version in the 3PL API paths.
        tpl_api_token: 3PL bearer token (`TPL_API_TOKEN` or `_FILE`).
        tpl_channel_id: 3PL channel id sent with every order (`shipbob_channel_id`; the sandbox's is 1001).
        tpl_timeout_s: Timeout of one 3PL API call.
        tpl_rate_limit: Requests per `tpl_rate_window_s` the adapter keeps to (M5): under ShipBob's
            150 a minute, because the adapter counts a request when it sends it and the 3PL when
            it arrives.
        tpl_rate_window_s: The 3PL's rate-limit window.
        tpl_bulk_share: Share of the window that bulk work (stock snapshots, receiving polls,
            location look-ups) may use; order flow may use all of it and goes first.
        tpl_max_budget_wait_s: Longest wait for a slot of the window before a call fails as a 429
            would (its message is retried after the time until a slot frees).
        tpl_mode: How orders reach the 3PL: its JSON API or EDI X12 drop folders.
        tpl_edi_dir: EDI mailbox folder (`inbound/`, `outbound/`); `<DATA_DIR>/edi` when unset.
        tpl_edi_poll_s: How often `outbound/` is read for 997, 945, 846 and 944 files.
        tpl_edi_sender_id: Our interchange id (ISA06) in 940s and 997s.
        tpl_edi_receiver_id: The 3PL's interchange id (ISA08).
        tpl_webhook_callback_url: Public URL of `/webhooks/tpl`, registered with the 3PL at start;
            unset registers nothing (EDI-only partners).
        tpl_inventory_interval_s: Seconds between inventory snapshot pulls (at start, then
            periodically); 0 pulls only at start and on RunReconciliation.
        tpl_receiving_interval_s: Seconds between polls of completed warehouse receiving orders
            (receipts against purchase orders); 0 turns the poll off.
        tpl_retry_interval_s: Seconds between retries of stored webhook deliveries that failed.
    """

    service_name: str = "tpl-adapter"
    grpc_port: Port = 50058
    metrics_port: Port = 9108
    http_port: Port | None = 8082
    http_host: str = "127.0.0.1"
    orders_addr: str = "127.0.0.1:50051"
    inventory_addr: str = "127.0.0.1:50052"
    shipments_addr: str = "127.0.0.1:50053"
    tpl_base_url: str = "http://127.0.0.1:8003"
    tpl_api_version: str = "2026-07"
    tpl_api_token: SecretStr | None = None
    tpl_channel_id: str = "1001"
    tpl_timeout_s: float = 10.0
    tpl_rate_limit: int = Field(default=140, ge=1)
    tpl_rate_window_s: float = Field(default=60.0, gt=0)
    tpl_bulk_share: float = Field(default=0.8, gt=0, le=1)
    tpl_max_budget_wait_s: float = Field(default=5.0, ge=0)
    tpl_mode: Literal["api", "edi"] = "api"
    tpl_edi_dir: str | None = None
    tpl_edi_poll_s: float = 5.0
    tpl_edi_sender_id: str = "RETAILMESH"
    tpl_edi_receiver_id: str = "TPLSANDBOX"
    tpl_webhook_callback_url: str | None = None
    tpl_inventory_interval_s: float = 300.0
    tpl_receiving_interval_s: float = 60.0
    tpl_retry_interval_s: float = 5.0
