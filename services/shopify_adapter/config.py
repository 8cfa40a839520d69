"""Settings of the shopify-adapter service: the shared ones plus its own, from the environment."""

from pydantic import SecretStr

from libs.config import Port, ServiceSettings


class ShopifyAdapterSettings(ServiceSettings):
    """What the shopify-adapter service reads at start (frozen; see `libs.config.ServiceSettings`).

    Attributes:
        service_name: Name in compose, k8s, metrics and traces.
        grpc_port: gRPC port (`GRPC_PORT`).
        metrics_port: Prometheus port (`METRICS_PORT`).
        http_port: HTTP listener port (`HTTP_PORT`).
        orders_addr: `host:port` of the orders service (`ORDERS_ADDR`).
        inventory_addr: `host:port` of the inventory service (`INVENTORY_ADDR`).
        shopify_base_url: Shop admin base URL (`https://<shop>.myshopify.com`); the sandbox by default.
        shopify_api_version: Admin API version the adapter speaks.
        shopify_access_token: Admin API access token (`SHOPIFY_ACCESS_TOKEN` or `_FILE`).
        shopify_webhook_secrets: Comma-separated app secrets that sign webhooks, new and old
            during rotation (S1).
        shopify_shop_domains: Comma-separated allow-list of shop domains (S1).
        webhook_max_body_bytes: Largest webhook body accepted (413 beyond).
    """

    service_name: str = "shopify-adapter"
    grpc_port: Port = 50056
    metrics_port: Port = 9106
    http_port: Port | None = 8080
    orders_addr: str = "127.0.0.1:50051"
    inventory_addr: str = "127.0.0.1:50052"
    shopify_base_url: str = "http://127.0.0.1:8001"
    shopify_api_version: str = "2026-04"
    shopify_access_token: SecretStr | None = None
    shopify_webhook_secrets: SecretStr | None = None
    shopify_shop_domains: str = "retail-mesh-demo.myshopify.com"
    webhook_max_body_bytes: int = 1_048_576
