"""Clients of external systems and peer services: Shopify Admin GraphQL, the orders service."""
