"""Machinery every sandbox stand-in shares: faults, create counters, control routes, rate limits, serving."""
