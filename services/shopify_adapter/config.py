"""Settings of the shopify-adapter service: the shared ones plus its own, from the environment."""

from pydantic import Field, SecretStr

from libs.config import Port, ServiceSettings, read_secret


class ShopifyAdapterSettings(ServiceSettings):
    """What the shopify-adapter service reads at start (frozen; see `libs.config.ServiceSettings`).

    Attributes:
        service_name: Name in compose, k8s, metrics and traces.
        grpc_port: gRPC port (`GRPC_PORT`).
        metrics_port: Prometheus port (`METRICS_PORT`).
        http_port: HTTP listener port (`HTTP_PORT`), serving `POST /webhooks/shopify`; 0 picks a free one.
        http_host: Address the HTTP listener binds; `0.0.0.0` in containers.
        orders_addr: `host:port` of the orders service (`ORDERS_ADDR`).
        inventory_addr: `host:port` of the inventory service (`INVENTORY_ADDR`).
        shopify_base_url: Shop admin base URL (`https://<shop>.myshopify.com`); the sandbox by default.
        shopify_api_version: Admin API version the adapter speaks.
        shopify_access_token: Admin API access token (`SHOPIFY_ACCESS_TOKEN` or `_FILE`).
        shopify_webhook_secrets: Comma-separated app secrets that sign webhooks, new and old
            during rotation (S1).
        shopify_shop_domains: Comma-separated allow-list of shop domains (S1).
        webhook_max_body_bytes: Largest webhook body accepted (413 beyond).
        shopify_webhook_callback_url: Where Shopify should deliver webhooks (this service's
            `/webhooks/shopify`); the subscriptions registered at start point here.
        shopify_http_timeout_s: Timeout of one Admin API call.
        webhook_worker_poll_s: How often the delivery worker looks for work it was not woken for.
        webhook_worker_concurrency: Stored deliveries (of different orders) worked at once.
        webhook_worker_ingress_first_s: How long a stored delivery waits, at most, while a burst of
            webhooks is being received before the worker starts it (the burst answered first;
            0: never wait).
        webhook_retry_max_s: Ceiling of the back-off between attempts of a delivery or fulfillment.
        reconcile_interval_s: Seconds between reconciliation polls of orders updated since the
            watermark (O2); 0 turns the periodic poll off (RunReconciliation still works).
        reconcile_overlap_s: The poll re-reads this far before the watermark (late writes, clock skew).
        reconcile_initial_lookback_minutes: How far back the first poll looks when no watermark is stored.
        subscription_check_interval_s: Seconds between checks that every webhook subscription still
            exists (Shopify deletes failing ones); 0 checks only at start.
        inventory_channel: The mesh channel whose availability Shopify shows (I4).
        inventory_push_batch: Quantities per `inventorySetQuantities` call (Shopify allows 250).
        inventory_push_poll_s: How often the inventory pusher looks for due rows it was not woken for.
        inventory_verify_s: How often Shopify's levels are re-read to find drift the mesh caused no
            event for (Shopify committing stock at another location than the mesh routed to).
        inventory_lower_grace_s: How long a Shopify figure below the mesh's must stand unchanged
            before verification repairs it (until then, sales on their way to the mesh explain it).
        inventory_push_coalesce_s: How long a changed item waits for further changes before it is
            pushed (rapid changes to one item become one push of the latest figure).
        inventory_push_keep_free: Share of Shopify's cost bucket the inventory pusher leaves to
            customer-facing calls (M5 priority lanes).
        inventory_push_urgent_after_s: Once the oldest change of a push has waited this long, the
            push no longer leaves that share (0: it always does; decision 0034).
        move_fulfillment_orders: Move Shopify's fulfillment orders to the location the mesh
            released each order to (`fulfillmentOrderMove`, decision 0042), so Shopify's committed
            stock follows the mesh's routing; off (the default) leaves Shopify's routing as it is.
    """

    service_name: str = "shopify-adapter"
    grpc_port: Port = 50056
    metrics_port: Port = 9106
    http_port: Port | None = 8080
    http_host: str = "127.0.0.1"
    orders_addr: str = "127.0.0.1:50051"
    inventory_addr: str = "127.0.0.1:50052"
    shopify_base_url: str = "http://127.0.0.1:8001"
    shopify_api_version: str = "2026-04"
    shopify_access_token: SecretStr | None = None
    shopify_webhook_secrets: SecretStr | None = None
    shopify_shop_domains: str = "retail-mesh-demo.myshopify.com"
    webhook_max_body_bytes: int = Field(default=1_048_576, gt=0)
    shopify_webhook_callback_url: str = "http://127.0.0.1:8080/webhooks/shopify"
    shopify_http_timeout_s: float = Field(default=10.0, gt=0)
    webhook_worker_poll_s: float = Field(default=1.0, gt=0)
    webhook_worker_concurrency: int = Field(default=16, ge=1, le=256)
    webhook_worker_ingress_first_s: float = Field(default=0.5, ge=0)
    webhook_retry_max_s: float = Field(default=300.0, gt=0)
    reconcile_interval_s: float = Field(default=300.0, ge=0)
    reconcile_overlap_s: float = Field(default=120.0, ge=0)
    reconcile_initial_lookback_minutes: int = Field(default=60, ge=0)
    subscription_check_interval_s: float = Field(default=600.0, ge=0)
    inventory_channel: str = Field(default="online-store", min_length=1)
    inventory_push_batch: int = Field(default=250, ge=1, le=250)
    inventory_push_poll_s: float = Field(default=0.5, gt=0)
    inventory_verify_s: float = Field(default=60.0, gt=0)
    inventory_lower_grace_s: float = Field(default=30.0, ge=0)
    inventory_push_coalesce_s: float = Field(default=0.25, ge=0)
    inventory_push_keep_free: float = Field(default=0.25, ge=0, lt=1)
    inventory_push_urgent_after_s: float = Field(default=1.0, ge=0)
    move_fulfillment_orders: bool = False

    def webhook_secrets(self) -> list[str]:
        """The webhook signing secrets, newest first (read again on each call, so a rotated file counts)."""
        raw = read_secret(self, "shopify_webhook_secrets") or ""
        return [part.strip() for part in raw.split(",") if part.strip()]

    def shop_domains(self) -> frozenset[str]:
        """The allow-listed shop domains, lower case."""
        return frozenset(d.strip().lower() for d in self.shopify_shop_domains.split(",") if d.strip())
