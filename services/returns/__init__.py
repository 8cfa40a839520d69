"""The returns service. See README.md."""
