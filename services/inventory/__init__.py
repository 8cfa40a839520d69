"""The inventory service. See README.md."""
