"""Counts of create calls per external key, so tests and benchmarks can prove no duplicate was made."""

from __future__ import annotations

import threading
import time
from collections import defaultdict


class CreateCounter:
    """Counts create attempts and created resources per (kind, external key).

    ``kind`` names the resource ("salesOrders", "orders"...); ``key`` is the caller's external key
    (an ``externalDocumentNumber``, a ``reference_id``...). An attempt the system refused (a
    duplicate answered 422, a validation error) counts as attempted but not created.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempted: dict[str, dict[str, int]] = defaultdict(dict)
        self._created: dict[str, dict[str, int]] = defaultdict(dict)
        self._created_at: dict[str, dict[str, list[float]]] = defaultdict(dict)
        self._clock = time.time

    def record(self, kind: str, key: str, created: bool = True) -> None:
        """Count one create call for ``key``; ``created`` says whether a resource was made."""
        with self._lock:
            attempted = self._attempted[kind]
            attempted[key] = attempted.get(key, 0) + 1
            if created:
                made = self._created[kind]
                made[key] = made.get(key, 0) + 1
                self._created_at[kind].setdefault(key, []).append(self._clock())

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Create calls (attempts, refused ones included): ``{kind: {key: count}}``."""
        with self._lock:
            return {kind: dict(keys) for kind, keys in self._attempted.items()}

    def created(self) -> dict[str, dict[str, int]]:
        """Resources actually created: ``{kind: {key: count}}``."""
        with self._lock:
            return {kind: dict(keys) for kind, keys in self._created.items()}

    def created_at(self) -> dict[str, dict[str, list[float]]]:
        """When each resource was created (Unix seconds, oldest first): ``{kind: {key: [t, ...]}}``.

        Benchmarks read latencies from these: the stand-in's own clock, at the moment it made the
        resource, not the caller's idea of when it asked.
        """
        with self._lock:
            return {
                kind: {key: list(times) for key, times in keys.items()}
                for kind, keys in self._created_at.items()
            }

    def duplicates(self) -> dict[str, dict[str, int]]:
        """Keys created as a resource more than once: ``{kind: {key: count}}``, only non-empty kinds."""
        with self._lock:
            found = {
                kind: {key: n for key, n in keys.items() if n > 1} for kind, keys in self._created.items()
            }
        return {kind: keys for kind, keys in found.items() if keys}

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._attempted.clear()
            self._created.clear()
            self._created_at.clear()
