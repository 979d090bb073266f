"""Schemas of the team's experiments and runs, as the side panel's Runs tab reads them.

Runs are MLflow's; the platform reads them with its own credentials and shows a caller only
the experiments of their teams (named ``<team>/<name>``: the name decides, never a tag).
``filter`` and ``order`` use MLflow's search syntax (``metrics.auc > 0.8``,
``metrics.auc DESC``); the cursor is MLflow's page token, passed through.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from .base import ApiModel, Page

ExperimentId = Annotated[str, Field(pattern=r"^[0-9]{1,19}$")]
RunId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
TeamName = Annotated[str, Field(min_length=1, max_length=200)]
# MLflow's search syntax, e.g. "metrics.auc > 0.8 and params.max_depth = '3'".
RunFilter = Annotated[str, Field(max_length=1000)]
# One ordering key of MLflow's: attributes.start_time / metrics.`a b` / params.x, ASC or DESC.
RunOrder = Annotated[
    str,
    Field(
        max_length=300,
        pattern=r"^((attributes|metrics|params|tags)\.(`[^`]{1,250}`|[A-Za-z0-9_.\-/]{1,250})"
        r"|start_time|end_time|run_name|status)( (ASC|DESC))?$",
    ),
]
PageToken = Annotated[str, Field(max_length=4000, pattern=r"^[A-Za-z0-9+/=_\-]*$")]


class ListExperiments(ApiModel):
    """``GET api/experiments``: your teams' experiments (one team with ``team``)."""

    team: TeamName | None = None


class DescribeExperiment(ApiModel):
    experiment_id: str
    name: str
    team: str
    mlflow_url: str


class ListExperimentsResponse(Page[DescribeExperiment]):
    """Your teams' experiments, by name."""


class ListRuns(ApiModel):
    """``GET api/runs``: runs of one of your teams' experiments (all of them without
    ``experiment_id``), newest first unless ``order`` says otherwise."""

    experiment_id: ExperimentId | None = None
    filter: RunFilter = ""
    order: RunOrder = "attributes.start_time DESC"
    cursor: PageToken | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50


class DescribeRunById(ApiModel):
    """``GET api/runs/<run_id>``."""

    run_id: RunId


class DescribeRunSummary(ApiModel):
    """One run as a row: its latest metrics and its parameters."""

    run_id: str
    name: str
    experiment_id: str
    experiment: str
    team: str
    status: str
    user: str
    start_time: datetime | None = None
    end_time: datetime | None = None
    params: dict[str, str]
    metrics: dict[str, float]
    notebook_path: str = ""
    mlflow_url: str


class ListRunsResponse(Page[DescribeRunSummary]):
    """A page of runs; ``next_cursor`` is MLflow's token for the next one."""


class MetricPoint(ApiModel):
    step: int
    value: float
    timestamp: int


class DescribeRun(DescribeRunSummary):
    """A run with each metric's history (for a chart; up to ``MAX_POINTS`` points each)
    and the platform's provenance tags (``mlplat.*``)."""

    histories: dict[str, list[MetricPoint]]
    tags: dict[str, str]
    has_notebook: bool = False


class DescribeRunNotebook(ApiModel):
    """``GET api/runs/<run_id>/notebook``: the notebook as it was saved when the run
    started (the ``mlplat/notebook.ipynb`` artifact), to open read-only."""

    run_id: str
    path: str
    sha256: str
    content: dict[str, Any]
