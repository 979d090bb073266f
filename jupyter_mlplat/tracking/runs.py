"""Team-scoped experiments and runs on MLflow, with provenance and batched metrics."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NotFoundError, UsageError
from ..identity import Identity, current_identity
from ..params import as_metric
from ..settings import MlplatSettings
from .batcher import MetricBatcher
from .capture import run_context_tags
from .connection import check_reachable, get_client, translated_errors

DEFAULT_EXPERIMENT = "default"
_MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value


@dataclass
class ExperimentInfo:
    name: str
    team: str
    experiment_id: str
    tracking_uri: str
    created: bool = False

    def __repr__(self) -> str:
        verb = "Created" if self.created else "Using"
        return f"{verb} experiment {self.name!r} (id {self.experiment_id}) at {self.tracking_uri}"


@dataclass
class RunInfo:
    run_id: str
    experiment: str
    experiment_id: str
    status: str
    tracking_uri: str
    params: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    feature_lineage: list = field(default_factory=list, repr=False)

    @property
    def url(self) -> str | None:
        if self.tracking_uri.startswith(("http://", "https://")):
            base = self.tracking_uri.rstrip("/")
            return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"
        return None

    def __repr__(self) -> str:
        where = f" — {self.url}" if self.url else ""
        return f"Run {self.run_id} in {self.experiment!r}: {self.status}{where}"

    def _repr_html_(self) -> str:
        import html

        link = (
            f' — <a href="{html.escape(self.url)}" target="_blank">open in MLflow</a>'
            if self.url
            else ""
        )
        return (
            f"Run <code>{self.run_id}</code> in <b>{html.escape(self.experiment)}</b>: "
            f"{html.escape(self.status)}{link}"
        )


@dataclass
class LogResult:
    run_id: str
    metrics: dict
    waiting: int

    def __repr__(self) -> str:
        names = ", ".join(f"{k}={v:g}" for k, v in self.metrics.items())
        state = f" ({self.waiting} buffered, sent at the end of the cell)" if self.waiting else ""
        return f"Logged {names} to run {self.run_id}{state}"


def _stringify(value) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:_MAX_PARAM_LENGTH]


class Tracker:
    """The active experiment and run of one user process.

    Wraps MLflow's fluent API (so autologging writes into our run) and its
    client (for batched writes), with names scoped to the user's team.
    """

    def __init__(self, settings: MlplatSettings, identity: Identity | None = None):
        if not isinstance(settings, MlplatSettings):
            raise TypeError(f"Tracker needs the MlplatSettings to use, got {settings!r}")
        self.settings = settings
        self.identity = identity or current_identity(self.settings)
        self.experiment: ExperimentInfo | None = None
        self.active_run: RunInfo | None = None
        self.last_run: RunInfo | None = None
        self.batcher = MetricBatcher(
            self._send_metrics,
            batch_size=self.settings.metric_batch_size,
            flush_seconds=self.settings.metric_flush_seconds,
        )
        atexit.register(self._flush_quietly)

    # -- plumbing -------------------------------------------------------------------------
    @property
    def client(self):
        check_reachable(self.settings.tracking_uri, self.settings.tracking_retry_seconds)
        return get_client(self.settings)

    def _send_metrics(self, run_id: str, metrics: list) -> None:
        with translated_errors(self.settings):
            self.client.log_batch(run_id, metrics=metrics, synchronous=True)

    def _flush_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.batcher.flush()

    # -- experiments ----------------------------------------------------------------------
    def set_experiment(self, name: str, team: str | None = None) -> ExperimentInfo:
        """Make ``<team>/<name>`` the active experiment, creating it when missing."""
        team, full_name = self.identity.scoped_name(name, team)
        with translated_errors(self.settings):
            client = self.client
            found = client.get_experiment_by_name(full_name)
            created = False
            if found is None:
                experiment_id = client.create_experiment(
                    full_name,
                    artifact_location=self.settings.artifact_location or None,
                    tags={"mlplat.team": team, "mlplat.created_by": self.identity.user},
                )
                created = True
            elif found.lifecycle_stage == "deleted":
                raise NotFoundError(
                    f"Experiment {full_name!r} was deleted; restore it in MLflow or pick a new name."
                )
            else:
                experiment_id = found.experiment_id
        self.experiment = ExperimentInfo(
            full_name, team, experiment_id, self.settings.tracking_uri, created
        )
        return self.experiment

    def _ensure_experiment(self) -> ExperimentInfo:
        if self.experiment is None:
            self.set_experiment(DEFAULT_EXPERIMENT)
        return self.experiment

    # -- runs -----------------------------------------------------------------------------
    def start_run(
        self,
        name: str | None = None,
        params: Mapping[str, object] | None = None,
        autolog: bool | None = None,
    ) -> RunInfo:
        """Start a run in the active experiment with provenance tags and ``params``."""
        if self.active_run is not None:
            raise UsageError(
                f"Run {self.active_run.run_id} is still active; end it with "
                "mlplat.end_run() before starting another."
            )
        experiment = self._ensure_experiment()
        params = dict(params or {})
        autolog = self.settings.autolog if autolog is None else autolog
        tags = run_context_tags(self.settings, self.identity.user, experiment.team)
        tags["mlplat.autolog"] = str(autolog).lower()
        with translated_errors(self.settings):
            client = self.client
            import mlflow

            self._configure_autolog(mlflow, autolog)
            run = mlflow.start_run(experiment_id=experiment.experiment_id, run_name=name, tags=tags)
            run_id = run.info.run_id
            self._log_notebook_snapshot(client, run_id, tags)
            if params:
                from mlflow.entities import Param

                client.log_batch(
                    run_id,
                    params=[Param(k, _stringify(v)) for k, v in params.items()],
                    synchronous=True,
                )
        self.active_run = RunInfo(
            run_id,
            experiment.name,
            experiment.experiment_id,
            "RUNNING",
            self.settings.tracking_uri,
            params=params,
            tags=tags,
        )
        return self.active_run

    def _log_notebook_snapshot(self, client, run_id: str, tags: Mapping[str, str]) -> None:
        """The saved notebook whose SHA-256 the run's tags name, as the run's
        ``mlplat/notebook.ipynb`` (what the side panel opens); skipped when the file changed
        since it was hashed or is larger than ``jobs_max_notebook_bytes``."""
        digest, path = tags.get("mlplat.notebook.sha256"), tags.get("mlplat.notebook.path")
        if not digest or not path:
            return
        try:
            content = Path(path).expanduser().read_bytes()
        except OSError:
            return
        if len(content) > self.settings.jobs_max_notebook_bytes:
            return
        if hashlib.sha256(content).hexdigest() != digest:
            return
        with tempfile.TemporaryDirectory(prefix="mlplat-snapshot-") as tmp:
            file = Path(tmp) / "notebook.ipynb"
            file.write_bytes(content)
            client.log_artifact(run_id, str(file), "mlplat")

    def _configure_autolog(self, mlflow, enabled: bool) -> None:
        mlflow.autolog(
            disable=not enabled,
            silent=True,
            log_models=self.settings.autolog_log_models,
            log_datasets=False,
        )

    def end_run(self, status: str = "FINISHED") -> RunInfo:
        """End the active run: flush its metrics, then set its final status."""
        run = self.active_run
        if run is None:
            raise UsageError("There is no active run to end; start one with %%mlplat run.")
        import mlflow

        try:
            with translated_errors(self.settings):
                self.batcher.flush(run.run_id)
        finally:
            # The run must never stay RUNNING, even if the flush failed.
            with translated_errors(self.settings):
                mlflow.end_run(status=status)
            run.status = status
            self.active_run = None
            self.last_run = run
        return run

    @contextlib.contextmanager
    def run(
        self,
        name: str | None = None,
        params: Mapping[str, object] | None = None,
        autolog: bool | None = None,
    ) -> Iterator[RunInfo]:
        """A run around a block; an exception ends it FAILED and propagates."""
        info = self.start_run(name, params, autolog)
        try:
            yield info
        except BaseException:
            status = "KILLED" if _is_interrupt() else "FAILED"
            with contextlib.suppress(Exception):
                self.end_run(status)
            raise
        self.end_run("FINISHED")

    # -- metrics --------------------------------------------------------------------------
    def target_run_id(self) -> str:
        run = self.active_run or self.last_run
        if run is None:
            raise UsageError(
                "There is no run to log to; start one with %%mlplat run (or mlplat.start_run())."
            )
        return run.run_id

    def log_metrics(self, metrics: Mapping[str, object], step: int | None = None) -> LogResult:
        """Buffer metrics for the active run (or the last one); see :class:`MetricBatcher`."""
        if not metrics:
            raise UsageError("Give at least one metric, like %mlplat log loss=0.25.")
        values = {key: as_metric(key, value) for key, value in metrics.items()}
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise UsageError(f"Step must be a whole number, got {step!r}.")
        run_id = self.target_run_id()
        waiting = self.batcher.add(run_id, values, step)
        return LogResult(run_id, values, waiting)

    def flush(self) -> int:
        with translated_errors(self.settings):
            return self.batcher.flush()

    def log_feature_lineage(self, lineage: Mapping[str, object]) -> None:
        """Record one feature retrieval on the active run.

        Every retrieval of the run is kept in ``mlplat/features.json``; tags hold
        the union of feature references and views for searching runs.
        """
        run = self.active_run
        if run is None:
            return
        from mlflow.entities import RunTag

        run.feature_lineage.append(dict(lineage))
        refs = sorted({r for doc in run.feature_lineage for r in doc.get("feature_refs", [])})
        views = sorted({v for doc in run.feature_lineage for v in doc.get("feature_views", [])})
        tags = {
            "mlplat.features.refs": ",".join(refs),
            "mlplat.features.views": ",".join(views),
            "mlplat.features.rows": str(sum(int(d.get("rows", 0)) for d in run.feature_lineage)),
            "mlplat.features.retrievals": str(len(run.feature_lineage)),
        }
        with translated_errors(self.settings):
            client = self.client
            client.log_batch(
                run.run_id,
                tags=[RunTag(k, _stringify(v)) for k, v in tags.items()],
                synchronous=True,
            )
            client.log_dict(run.run_id, {"retrievals": run.feature_lineage}, "mlplat/features.json")


def _is_interrupt() -> bool:
    import sys

    exc = sys.exc_info()[1]
    return isinstance(exc, KeyboardInterrupt)
