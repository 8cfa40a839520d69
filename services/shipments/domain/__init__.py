"""Pure rules of the shipments domain: tracking progress and delivery."""
