"""The catalog service. See README.md."""
