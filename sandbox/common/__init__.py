"""Machinery every stand-in shares: faults, create counters, control routes, rate limits, serving, CLI."""
