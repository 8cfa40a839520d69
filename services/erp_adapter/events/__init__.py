"""The erp-adapter's subscriptions: accepted orders, cancellations and confirmed shipments."""

from services.erp_adapter.events.handlers import ErpHandlers, subscriptions

__all__ = ["ErpHandlers", "subscriptions"]
