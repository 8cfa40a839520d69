"""Pure translations between Shopify payloads and canonical protos; no I/O."""
