"""Peer 2: a Celery worker on Redis, what most Python teams build first (see tasks.py)."""
