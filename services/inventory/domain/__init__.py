"""Pure inventory rules: positions, reservations, channel allocation and routing (no I/O)."""
