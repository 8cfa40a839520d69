"""Settings of the erp-adapter service: the shared ones plus its own, from the environment."""

from pydantic import SecretStr

from libs.config import Port, ServiceSettings


class ErpAdapterSettings(ServiceSettings):
    """What the erp-adapter service reads at start (frozen; see `libs.config.ServiceSettings`).

    Attributes:
        service_name: Name in compose, k8s, metrics and traces.
        grpc_port: gRPC port (`GRPC_PORT`).
        metrics_port: Prometheus port (`METRICS_PORT`).
        orders_addr: `host:port` of the orders service (`ORDERS_ADDR`).
        bc_base_url: Business Central API root, the sandbox by default; for real:
            `https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>`.
        bc_tenant_id: Azure AD tenant of the OAuth2 client-credentials flow.
        bc_client_id: OAuth2 client id.
        bc_client_secret: OAuth2 client secret (`BC_CLIENT_SECRET` or `_FILE`).
        bc_company_id: Company id; the first company when unset.
    """

    service_name: str = "erp-adapter"
    grpc_port: Port = 50057
    metrics_port: Port = 9107
    orders_addr: str = "127.0.0.1:50051"
    bc_base_url: str = "http://127.0.0.1:8002"
    bc_tenant_id: str = "sandbox"
    bc_client_id: str = "retail-mesh"
    bc_client_secret: SecretStr | None = None
    bc_company_id: str | None = None
