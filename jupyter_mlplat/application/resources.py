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
        self._servers = None
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
    def servers(self):
        """The local model servers of this process (started on first use)."""
        if self._servers is None:
            from pathlib import Path

            from ..serving.supervisor import LocalServers

            settings = self.settings
            with self._lock:
                if self._servers is None:
                    self._servers = LocalServers(
                        settings.serving_python or None,
                        Path(settings.serving_dir),
                        ready_timeout=settings.serving_ready_timeout,
                        stop_grace=settings.serving_stop_grace_seconds,
                        account_prefix=settings.serving_account_prefix or None,
                    )
        return self._servers

    def close(self) -> None:
        """Stop what this process started (its model servers)."""
        if self._servers is not None:
            self._servers.close()
