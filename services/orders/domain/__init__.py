"""The order state machine, pure: states, transitions with their owning systems, and the rules."""
