"""The shopify-adapter service. See README.md."""
