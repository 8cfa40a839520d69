"""The ops service. See README.md."""
