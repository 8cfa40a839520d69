"""Background work of the adapter: stored deliveries, fulfillments, reconciliation, subscriptions."""
