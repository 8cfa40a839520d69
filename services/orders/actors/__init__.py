"""The order actor: one per order id, every transition in one turn with its events (M1)."""
