"""What the areas share in one process: the platform store and the MLflow client."""

from __future__ import annotations

import threading

from ..settings import MlplatSettings


class Resources:
    """Lazily opened backends for one settings object (one per process)."""

    def __init__(self, settings: MlplatSettings):
        self.settings = settings
        self._store = None
        self._mlflow = None
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

    @property
    def mlflow(self):
        """An MLflow client on the platform's own tracking URI (checked reachable first)."""
        from ..tracking.connection import check_reachable, get_client

        check_reachable(self.settings.tracking_uri, self.settings.tracking_retry_seconds)
        if self._mlflow is None:
            self._mlflow = get_client(self.settings)
        return self._mlflow
