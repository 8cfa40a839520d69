"""How the ops service reads the events of other contexts."""
