"""Event mapping and subscriptions of the orders service."""
