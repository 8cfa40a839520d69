"""The erp-adapter's HTTP client of Business Central API v2.0 (its request budget is
`libs.http.budget`)."""

from services.erp_adapter.clients.business_central import (
    BcBusinessError,
    BcConflict,
    BcError,
    BcNotFound,
    BcTransientError,
    BusinessCentralClient,
)

__all__ = [
    "BcBusinessError",
    "BcConflict",
    "BcError",
    "BcNotFound",
    "BcTransientError",
    "BusinessCentralClient",
]
