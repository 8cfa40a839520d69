"""The erp-adapter service. See README.md."""
