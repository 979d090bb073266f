"""What the areas share in one process: the platform store (MLflow is reached by the
domain modules with the settings, each call checking it answers first)."""

from __future__ import annotations

import threading

from ..settings import MlplatSettings


class Resources:
    """Lazily opened backends for one settings object (one per process)."""

    def __init__(self, settings: MlplatSettings):
        self.settings = settings
        self._store = None
        self._lock = threading.Lock()

    @property
    def store(self):
        """The platform store (migrated on first use)."""
        if self._store is None:
            from ..store.db import get_store

            with self._lock:
                if self._store is None:
                    self._store = get_store(self.settings)
        return self._store
