"""Schemas of production notebooks: runs and cron schedules (issue 10; DESIGN §7).

A submitted notebook travels as its content (read in the user's own server, as them): the
platform never opens a path a user names. ``notebook_path`` is where it came from, relative
to the user's root, kept for the record and for the run's working folder.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from .base import ApiModel, Id, ListRequest, Page


def _relative_inside(path: str) -> str:
    """A path below the user's root: no '..' or '.' segments, no empty ones."""
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError(
            "the notebook path must go from your root folder down, without '.', '..' or '//'"
        )
    return path


NotebookPath = Annotated[
    str,
    Field(min_length=1, max_length=1024, pattern=r"^[^\x00/\\][^\x00\\]*\.ipynb$"),
    AfterValidator(_relative_inside),
]
ScheduleName = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
Team = Annotated[str, Field(min_length=1, max_length=200)]
ProfileSlug = Annotated[str, Field(max_length=100, pattern=r"^[a-z0-9-]*$")]
JobStatus = Literal[
    "queued", "running", "succeeded", "failed", "cancelled", "interrupted", "skipped"
]


class CreateJob(ApiModel):
    """``POST api/jobs``: run a notebook now, in a fresh kernel, as you."""

    notebook_path: NotebookPath
    notebook: dict[str, Any]
    parameters: dict[str, Any] = {}
    profile: ProfileSlug = ""
    team: Team | None = None


class DescribeJobById(ApiModel):
    run_id: Id


class RerunJob(ApiModel):
    """``POST api/jobs/<run_id>/rerun``: run that run's notebook snapshot again, as you,
    with ``parameters`` replacing some of its values (the others stay)."""

    run_id: Id
    parameters: dict[str, Any] = {}


class ListJobs(ListRequest):
    """``GET api/jobs``: your teams' runs, newest first (``cursor``: continue below that id)."""

    schedule_id: Id | None = None
    status: JobStatus | None = None


class DescribeJob(ApiModel):
    id: int
    status: JobStatus
    reason: str
    owner: str
    team: str
    notebook_path: str
    snapshot_digest: str
    parameters: dict[str, Any]
    profile: str
    schedule_id: int | None
    fire_time: datetime | None
    cells_done: int
    cells_total: int
    failed_cell: dict[str, Any] | None
    mlflow_run_id: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ListJobsResponse(Page[DescribeJob]):
    pass


class DescribeJobLogs(ApiModel):
    run_id: int
    text: str
    truncated: bool


class DescribeJobNotebook(ApiModel):
    """The executed notebook of a finished run (None while it runs, or if none was kept)."""

    run_id: int
    notebook: dict[str, Any] | None


class CreateSchedule(ApiModel):
    """``POST api/schedules``: run a notebook snapshot on a cron schedule, as you."""

    name: ScheduleName
    notebook_path: NotebookPath
    notebook: dict[str, Any]
    cron: Annotated[str, Field(min_length=1, max_length=200)]
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    missed: Literal["run_once", "skip"] = "run_once"
    parameters: dict[str, Any] = {}
    profile: ProfileSlug = ""
    team: Team | None = None


class DescribeScheduleById(ApiModel):
    schedule_id: Id


class ListSchedules(ListRequest):
    """``GET api/schedules``: your teams' schedules."""


class DescribeSchedule(ApiModel):
    id: int
    name: str
    owner: str
    team: str
    notebook_path: str
    snapshot_digest: str
    parameters: dict[str, Any]
    profile: str
    cron: str
    timezone: str
    missed: str
    paused: bool
    next_fire_at: datetime | None
    created_at: datetime


class ListSchedulesResponse(Page[DescribeSchedule]):
    pass
