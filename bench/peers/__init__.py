"""What retailers build instead of the mesh, run against the same sandbox by `python -m bench`."""
