"""Test-only helpers: real servers (PostgreSQL, NATS) started on free ports and cleaned up."""
