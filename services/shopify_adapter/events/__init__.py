"""Event subscriptions of the shopify-adapter."""
