"""Settings of the orders service: the shared ones plus its own, from the environment."""

from libs.config import Port, ServiceSettings


class OrdersSettings(ServiceSettings):
    """What the orders service reads at start (frozen; see `libs.config.ServiceSettings`).

    Attributes:
        service_name: Name in compose, k8s, metrics and traces.
        grpc_port: gRPC port (`GRPC_PORT`).
        metrics_port: Prometheus port (`METRICS_PORT`).
        inventory_addr: `host:port` of the inventory service (`INVENTORY_ADDR`).
        backorder_channels: Comma-separated channels whose orders wait for stock instead of being
            rejected (`BACKORDER_CHANNELS`).
        reserve_retry_s: Seconds after which an unanswered reservation is re-driven (`RESERVE_RETRY_S`).
        backorder_retry_s: Seconds between reservation attempts of a backordered order without a
            stock signal (`BACKORDER_RETRY_S`).
        inbound_sweep_s: Seconds between sweeps of stock changes still waiting for a backordered
            order's actor (`order_inbound`).
        reminder_poll_s: Seconds between polls for due actor reminders.
    """

    service_name: str = "orders"
    grpc_port: Port = 50051
    metrics_port: Port = 9101
    inventory_addr: str = "127.0.0.1:50052"
    backorder_channels: str = "online-store"
    reserve_retry_s: float = 10.0
    backorder_retry_s: float = 60.0
    inbound_sweep_s: float = 2.0
    reminder_poll_s: float = 1.0

    @property
    def backorder_channel_set(self) -> frozenset[str]:
        """`backorder_channels` as a set."""
        return frozenset(c.strip() for c in self.backorder_channels.split(",") if c.strip())
