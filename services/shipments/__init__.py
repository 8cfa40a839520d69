"""The shipments service. See README.md."""
