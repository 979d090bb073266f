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
        self._kube = None
        self._job_runner = None
        self._job_workers = None
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

    @property
    def kube(self):
        """The Kubernetes deployer in the kubernetes mode, else None."""
        if self.settings.mode != "kubernetes":
            return None
        if self._kube is None:
            from pathlib import Path

            import mlflow

            from ..errors import ServiceUnavailable
            from ..profiles import load_profiles
            from ..serving import kube_api
            from ..serving.kube_deployer import KubeDeployer

            settings = self.settings

            def connect():
                try:
                    token = Path(settings.kube_token_file).read_text().strip()
                except OSError as exc:
                    raise ServiceUnavailable(
                        f"The Kubernetes token file {settings.kube_token_file} cannot be read "
                        f"({exc.strerror}); set MlplatSettings.kube_token_file."
                    ) from exc
                verify = settings.kube_ca_file if settings.kube_ca_file else True
                return kube_api.connect(settings.kube_api_url, token, verify)

            with self._lock:
                if self._kube is None:
                    self._kube = KubeDeployer(
                        connect,
                        load_profiles(settings.profiles_dir),
                        storage_uri=settings.serving_storage_uri,
                        runtime_image=settings.serving_runtime_image,
                        mlflow_version=mlflow.__version__,
                        ready_timeout=settings.kube_ready_timeout,
                    )
        return self._kube

    @property
    def job_runner(self):
        if self._job_runner is None:
            from pathlib import Path

            from ..jobs.runner import JobRunner
            from ..jobs.tokens import owner_token

            settings = self.settings
            token_for = None
            if settings.hub_api_url and settings.hub_api_token:
                scopes = [
                    "access:services!service=mlflow",
                    f"access:services!service={settings.service_name}",
                ]

                def token_for(owner: str, expires_in: float) -> str:
                    return owner_token(
                        settings.hub_api_url, settings.hub_api_token, owner, expires_in,
                        scopes, "jupyter-mlplat job",
                    )  # fmt: skip

            with self._lock:
                if self._job_runner is None:
                    self._job_runner = JobRunner(
                        store_root=Path(settings.jobs_dir),
                        work_root=Path(settings.jobs_work_dir),
                        python=settings.jobs_python,
                        account_prefix=settings.jobs_account_prefix or None,
                        timeout=settings.jobs_timeout_seconds, kernel=settings.jobs_kernel,
                        tracking_uri=settings.tracking_uri, token_for=token_for,
                        service_url=settings.service_url if token_for else "",
                        max_notebook_bytes=settings.jobs_max_notebook_bytes,
                        warm=settings.jobs_warm_starters,
                        warm_idle_seconds=settings.jobs_warm_idle_seconds,
                    )  # fmt: skip
        return self._job_runner

    @property
    def has_job_workers(self) -> bool:
        return self._job_workers is not None

    def job_workers_for(self, spec_for):
        """The pool running this process's jobs (made on first use, started by the caller)."""
        if self._job_workers is None:
            from ..jobs.workers import JobWorkers

            store, runner = self.store, self.job_runner  # each takes the lock
            with self._lock:
                if self._job_workers is None:
                    self._job_workers = JobWorkers(
                        store, runner, spec_for,
                        size=self.settings.jobs_workers, tick=self.settings.jobs_tick_seconds,
                        heartbeat=self.settings.jobs_heartbeat_seconds,
                    )  # fmt: skip
        return self._job_workers

    def close(self) -> None:
        """Stop what this process started (its job runs and model servers)."""
        if self._job_workers is not None:
            self._job_workers.close()
        if self._servers is not None:
            self._servers.close()
