"""Reading the teams' experiments and runs from MLflow, for the side panel.

The caller's teams decide what is visible: an experiment is a team's when it is named
``<team>/<name>`` (never by a tag), a run is its experiment's. The platform reads with
its own client; these functions receive the teams and the client, and keep MLflow's
search syntax and page tokens as they are.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from ..api.runs import (
    DescribeExperiment,
    DescribeRun,
    DescribeRunNotebook,
    DescribeRunSummary,
    ListExperimentsResponse,
    ListRunsResponse,
    MetricPoint,
)
from ..errors import NotFoundError, PermissionDenied, TooLarge, UsageError

NOTEBOOK_ARTIFACT = "mlplat/notebook.ipynb"  # the notebook as saved when the run started
MAX_PARAMS_IN_ROW = 50
MAX_METRICS_IN_DETAIL = 20
MAX_POINTS = 1000
INVALID = "INVALID_PARAMETER_VALUE"
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


def team_of(experiment_name: str) -> str:
    team, slash, rest = (experiment_name or "").partition("/")
    return team if slash and team and rest else ""


def _ui(base: str, *parts: str) -> str:
    """The MLflow UI's address of an experiment or run ('' without a browsable base)."""
    if not base.startswith(("http://", "https://", "/")):
        return ""
    path = "/".join(p for pair in zip(("experiments", "runs"), parts, strict=False) for p in pair)
    return f"{base.rstrip('/')}/#/{path}"


def team_experiments(client, teams: Iterable[str]) -> list:
    """MLflow's experiments of ``teams`` (active ones), by name."""
    from mlflow.entities import ViewType

    wanted = set(teams)
    found: dict[str, object] = {}
    for team in sorted(wanted):
        # LIKE narrows the search; the name's team decides (a '_' in LIKE matches any char).
        like = f"name LIKE '{team}/%'" if "'" not in team and "%" not in team else ""
        token = None
        while True:
            page = client.search_experiments(
                view_type=ViewType.ACTIVE_ONLY, filter_string=like, max_results=1000,
                page_token=token,
            )  # fmt: skip
            for experiment in page:
                if team_of(experiment.name) in wanted:
                    found[experiment.experiment_id] = experiment
            token = page.token
            if not token:
                break
    return sorted(found.values(), key=lambda e: e.name)


def list_experiments(client, teams: Iterable[str], ui_base: str) -> ListExperimentsResponse:
    return ListExperimentsResponse(
        items=[
            DescribeExperiment(
                experiment_id=e.experiment_id,
                name=e.name,
                team=team_of(e.name),
                mlflow_url=_ui(ui_base, e.experiment_id),
            )  # fmt: skip
            for e in team_experiments(client, teams)
        ]
    )


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def _summary(run, experiment_name: str, ui_base: str, all_params: bool = False) -> dict:
    info, data = run.info, run.data
    params = dict(sorted(data.params.items()))
    if not all_params:
        params = dict(list(params.items())[:MAX_PARAMS_IN_ROW])
    return dict(
        run_id=info.run_id, name=info.run_name or "", experiment_id=info.experiment_id,
        experiment=experiment_name, team=team_of(experiment_name), status=info.status,
        user=data.tags.get("mlplat.user") or info.user_id or "",
        start_time=_time(info.start_time), end_time=_time(info.end_time),
        params=params, metrics=dict(sorted(data.metrics.items())),
        notebook_path=data.tags.get("mlplat.notebook.path", ""),
        mlflow_url=_ui(ui_base, info.experiment_id, info.run_id),
    )  # fmt: skip


def _invalid_search(exc: BaseException, filter_: str, order: str) -> UsageError:
    first = (getattr(exc, "message", None) or str(exc)).strip().splitlines()[0][:300]
    return UsageError(
        f"MLflow refused the search (filter {filter_!r}, order {order!r}): {first}; write the "
        "filter in MLflow's syntax, e.g. metrics.auc > 0.8 and params.depth = '3'."
    )


def search_runs(
    client,
    teams: Iterable[str],
    ui_base: str,
    *,
    experiment_id: str | None,
    filter_: str,
    order: str,
    cursor: str | None,
    limit: int,
) -> ListRunsResponse:
    """A page of the teams' runs (one experiment's with ``experiment_id``)."""
    from mlflow.exceptions import MlflowException

    experiments = {e.experiment_id: e.name for e in team_experiments(client, teams)}
    if experiment_id is not None:
        if experiment_id not in experiments:
            raise PermissionDenied(
                f"Experiment {experiment_id} is not one of your teams' experiments "
                f"({', '.join(sorted(set(teams))) or 'you have no team'}); pick one from "
                "GET api/experiments."
            )
        experiments = {experiment_id: experiments[experiment_id]}
    if not experiments:
        return ListRunsResponse(items=[])
    try:
        page = client.search_runs(
            list(experiments), filter_string=filter_, order_by=[order], max_results=limit,
            page_token=cursor,
        )  # fmt: skip
    except MlflowException as exc:
        if getattr(exc, "error_code", None) == INVALID:
            raise _invalid_search(exc, filter_, order) from exc
        raise
    items = [
        DescribeRunSummary(**_summary(run, experiments[run.info.experiment_id], ui_base))
        for run in page
    ]
    return ListRunsResponse(items=items, next_cursor=page.token or None)


def _team_run(client, teams: Iterable[str], run_id: str):
    """The run and its experiment's name, if the experiment is one of ``teams``'."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
        experiment = client.get_experiment(run.info.experiment_id)
    except MlflowException as exc:
        if getattr(exc, "error_code", None) == NOT_FOUND:
            raise NotFoundError(f"There is no MLflow run {run_id}; check the run id.") from exc
        raise
    team = team_of(experiment.name)
    if not team or team not in set(teams):
        raise PermissionDenied(
            f"Run {run_id} lies in experiment {experiment.name!r}, which is not one of your "
            "teams' experiments; only your teams' runs are shown."
        )
    return run, experiment.name


def _thinned(points: list) -> list:
    """At most MAX_POINTS points, evenly spaced, the last one kept."""
    if len(points) <= MAX_POINTS:
        return points
    stride = len(points) / MAX_POINTS
    kept = [points[int(i * stride)] for i in range(MAX_POINTS - 1)]
    return [*kept, points[-1]]


def describe_run(client, teams: Iterable[str], ui_base: str, run_id: str) -> DescribeRun:
    run, experiment = _team_run(client, teams, run_id)
    histories = {}
    for key in sorted(run.data.metrics)[:MAX_METRICS_IN_DETAIL]:
        points = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
        histories[key] = [
            MetricPoint(step=m.step, value=m.value, timestamp=m.timestamp) for m in _thinned(points)
        ]
    listed = {a.path for a in client.list_artifacts(run_id, "mlplat")}
    return DescribeRun(
        **_summary(run, experiment, ui_base, all_params=True),
        histories=histories,
        tags={k: v for k, v in sorted(run.data.tags.items()) if k.startswith("mlplat.")},
        has_notebook=NOTEBOOK_ARTIFACT in listed,
    )


def run_notebook(client, teams: Iterable[str], run_id: str, max_bytes: int) -> DescribeRunNotebook:
    import mlflow.artifacts

    run, _ = _team_run(client, teams, run_id)
    sizes = {a.path: a.file_size for a in client.list_artifacts(run_id, "mlplat")}
    if NOTEBOOK_ARTIFACT not in sizes:
        raise NotFoundError(
            f"Run {run_id} has no notebook snapshot (runs started from a saved notebook with "
            "%%mlplat run keep one); open the notebook it names instead."
        )
    if (sizes[NOTEBOOK_ARTIFACT] or 0) > max_bytes:
        raise TooLarge(
            f"The notebook snapshot of run {run_id} is {sizes[NOTEBOOK_ARTIFACT]} bytes, more than "
            f"the {max_bytes} bytes the panel opens; download it from the MLflow UI."
        )
    with tempfile.TemporaryDirectory(prefix="mlplat-snapshot-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=NOTEBOOK_ARTIFACT, dst_path=tmp,
            tracking_uri=client.tracking_uri,
        )  # fmt: skip
        content = json.loads(Path(local).read_text(encoding="utf-8"))
    return DescribeRunNotebook(
        run_id=run_id,
        path=run.data.tags.get("mlplat.notebook.path", ""),
        sha256=run.data.tags.get("mlplat.notebook.sha256", ""),
        content=content,
    )
