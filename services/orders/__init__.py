"""The orders service. See README.md."""
