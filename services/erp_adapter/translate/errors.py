"""Business Central error codes and messages → canonical rejection reasons (O4, M3).

BC names some refusals with their own code; most AL errors arrive as the generic
`Application_DialogException`, where only the message tells them apart, so both are read.
"""

from __future__ import annotations

import re

from retail.common.v1 import common_pb2
from retail.orders.v1 import orders_pb2

R = orders_pb2.RejectionReason

_BY_CODE = {
    "Application_CustomerNotFound": R.REJECTION_REASON_CUSTOMER_BLOCKED,
    "Application_CustomerBlocked": R.REJECTION_REASON_CUSTOMER_BLOCKED,
    "Application_CreditLimitExceeded": R.REJECTION_REASON_CREDIT_LIMIT_EXCEEDED,
    "Application_TaxAreaMissing": R.REJECTION_REASON_TAX_REJECTED,
    "Application_ItemNotFound": R.REJECTION_REASON_INVALID_SKU,
    "Application_ItemBlocked": R.REJECTION_REASON_INVALID_SKU,
    "Application_PaymentNotAuthorized": R.REJECTION_REASON_PAYMENT_NOT_AUTHORIZED,
    "Application_FraudHold": R.REJECTION_REASON_FRAUD_SUSPECTED,
    "Application_InsufficientInventory": R.REJECTION_REASON_OUT_OF_STOCK,
}

# Checked in order against the message of a generic error; the first match wins.
_BY_MESSAGE = [
    (re.compile(r"fraud", re.I), R.REJECTION_REASON_FRAUD_SUSPECTED),
    (re.compile(r"payment .*not authori[sz]ed", re.I), R.REJECTION_REASON_PAYMENT_NOT_AUTHORIZED),
    (re.compile(r"credit (limit|hold)", re.I), R.REJECTION_REASON_CREDIT_LIMIT_EXCEEDED),
    (re.compile(r"tax area|tax jurisdiction|tax group", re.I), R.REJECTION_REASON_TAX_REJECTED),
    (re.compile(r"customer .*blocked|\(Customer\)", re.I), R.REJECTION_REASON_CUSTOMER_BLOCKED),
    (re.compile(r"\(Item\)|Item \S+ is blocked", re.I), R.REJECTION_REASON_INVALID_SKU),
    (re.compile(r"insufficient quantity", re.I), R.REJECTION_REASON_OUT_OF_STOCK),
]


def rejection_reason(code: str, message: str) -> orders_pb2.RejectionReason.ValueType:
    """The canonical reason of a BC business error; OTHER when nothing matches."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    for pattern, reason in _BY_MESSAGE:
        if pattern.search(message):
            return reason
    return R.REJECTION_REASON_OTHER


def reason_code(reason: orders_pb2.RejectionReason.ValueType) -> str:
    """`REJECTION_REASON_TAX_REJECTED` → `TAX_REJECTED` (the upper-snake code ops groups by)."""
    return R.Name(reason).removeprefix("REJECTION_REASON_")


def erp_reason(code: str, message: str) -> common_pb2.Reason:
    """The ERP's refusal as evidence: canonical code, BC's message and code verbatim."""
    return common_pb2.Reason(
        code=reason_code(rejection_reason(code, message)),
        message=message[:2000],
        source_system=common_pb2.SOURCE_SYSTEM_ERP,
        failure_kind=common_pb2.FAILURE_KIND_BUSINESS,
        external_code=code[:255],
    )
