"""Settings of the erp-adapter service: the shared ones plus its own, from the environment."""

from pydantic import Field, SecretStr

from libs.config import Port, ServiceSettings


class ErpAdapterSettings(ServiceSettings):
    """What the erp-adapter service reads at start (frozen; see `libs.config.ServiceSettings`).

    Attributes:
        service_name: Name in compose, k8s, metrics and traces.
        grpc_port: gRPC port (`GRPC_PORT`).
        metrics_port: Prometheus port (`METRICS_PORT`).
        orders_addr: `host:port` of the orders service (`ORDERS_ADDR`).
        inventory_addr: `host:port` of the inventory service (`INVENTORY_ADDR`): purchase orders.
        bc_base_url: Business Central API root, the sandbox by default; for real:
            `https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>`.
        bc_tenant_id: Azure AD tenant of the OAuth2 client-credentials flow.
        bc_client_id: OAuth2 client id.
        bc_client_secret: OAuth2 client secret (`BC_CLIENT_SECRET` or `_FILE`).
        bc_company_id: Company id; the first company when unset.
        bc_token_url: OAuth2 token endpoint; unset =
            `<scheme://host of BC_BASE_URL>/<tenant>/oauth2/v2.0/token`
            (the sandbox). Real: `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`.
        bc_scope: OAuth2 scope of the client-credentials grant.
        bc_timeout_s: Timeout of one HTTP call to Business Central.
        bc_rate_limit: Requests per window the adapter allows itself (M5); keep it a little below
            the ERP's own limit (BC: 6,000 per 5 minutes per user): the adapter counts a request
            when it sends it and BC when it arrives, so at the window's edge an equal limit can
            still draw a 429. The default keeps 5 % back.
        bc_rate_window_s: The request window in seconds.
        bc_bulk_share: Share of the window that bulk lanes (postings, reconciliation) may use; the rest
            is kept for customer-facing order creation.
        bc_max_budget_wait_s: Longest a handler waits for the budget before giving the message back
            to the bus with a delay.
        bc_default_customer: ERP customer number of orders without one (web shop guests).
        bc_customer_map: Channel customer id (Shopify GID or numeric id) → ERP customer number.
        bc_transient_retry_s: Delay of a retry when the ERP gave no Retry-After.
        bc_inbound_poll_s: Seconds between polls of open purchase orders (incoming stock); 0 turns
            the poll off.
    """

    service_name: str = "erp-adapter"
    grpc_port: Port = 50057
    metrics_port: Port = 9107
    orders_addr: str = "127.0.0.1:50051"
    inventory_addr: str = "127.0.0.1:50052"
    bc_base_url: str = "http://127.0.0.1:8002"
    bc_tenant_id: str = "sandbox"
    bc_client_id: str = "retail-mesh"
    bc_client_secret: SecretStr | None = None
    bc_company_id: str | None = None
    bc_token_url: str | None = None
    bc_scope: str = "https://api.businesscentral.dynamics.com/.default"
    bc_timeout_s: float = Field(10.0, gt=0)
    bc_rate_limit: int = Field(5700, ge=1)
    bc_rate_window_s: float = Field(300.0, gt=0)
    bc_bulk_share: float = Field(0.8, gt=0, le=1)
    bc_max_budget_wait_s: float = Field(5.0, ge=0)
    bc_default_customer: str = "C10000"
    bc_customer_map: dict[str, str] = Field(default_factory=dict)
    bc_transient_retry_s: float = Field(2.0, gt=0)
    bc_inbound_poll_s: float = Field(60.0, ge=0)
