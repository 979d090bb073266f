"""Schemas of Kubeflow pipelines run from notebooks (issue 11; DESIGN §2, §6).

A pipeline travels compiled (its IR YAML, made in the user's kernel from their
``@dsl.pipeline`` function) with its checked arguments; its runs are rows in the platform
store (a job run of kind ``pipeline`` with its tasks).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from .base import ApiModel, Id, ListRequest, Page
from .jobs import JobStatus, ProfileSlug, Team

PipelineName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
TaskName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
Experiment = Annotated[str, Field(max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/-]*$|^$")]


class CreatePipelineRun(ApiModel):
    """``POST api/pipelines``: run a compiled pipeline, as you."""

    name: PipelineName
    pipeline_yaml: Annotated[str, Field(min_length=1)]
    arguments: dict[str, Any] = {}
    mode: Literal["local", "kfp"] = "local"
    experiment: Experiment = ""
    profile: ProfileSlug = ""
    team: Team | None = None


class DescribePipelineRunById(ApiModel):
    run_id: Id


class DescribePipelineTaskLogs(ApiModel):
    """``GET api/pipelines/{run_id}/logs``: the run's log, or one task's (``task``)."""

    run_id: Id
    task: TaskName | None = None


class ListPipelineRuns(ListRequest):
    """``GET api/pipelines``: your teams' pipeline runs, newest first."""

    status: JobStatus | None = None


class PipelineTask(ApiModel):
    name: str
    state: Literal["pending", "running", "succeeded", "failed", "skipped", "cancelled"]
    started: float | None = None
    ended: float | None = None
    outputs: dict[str, Any] = {}
    mlflow_run_id: str = ""
    notebook: bool = False  # an executed notebook is kept (``.../tasks/{task}/notebook``)


class DescribePipelineRun(ApiModel):
    id: int
    name: str
    status: JobStatus
    reason: str
    owner: str
    team: str
    mode: str
    experiment: str
    arguments: dict[str, Any]
    pipeline_digest: str
    kfp_run_id: str
    mlflow_run_id: str
    tasks: list[PipelineTask]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ListPipelineRunsResponse(Page[DescribePipelineRun]):
    pass


class DescribePipelineLogs(ApiModel):
    run_id: int
    task: str | None
    text: str
    truncated: bool


class DescribePipelineTaskNotebookById(ApiModel):
    run_id: Id
    task: TaskName


class DescribePipelineTaskNotebook(ApiModel):
    run_id: int
    task: str
    notebook: dict[str, Any] | None
