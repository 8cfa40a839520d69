"""HTTP clients of the erp-adapter: Business Central API v2.0 and the request budget in front of it."""

from libs.http.budget import BudgetExhausted, Lane, RequestBudget
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
    "BudgetExhausted",
    "BusinessCentralClient",
    "Lane",
    "RequestBudget",
]
