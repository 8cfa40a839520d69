"""The Shopify stand-in: Admin GraphQL 2026-04, signed webhooks, checkout, fault injection."""
