"""Schemas of deployments and predictions (issue 9; DESIGN §2, §5)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from .base import ApiModel, ListRequest, Page
from .governance import ModelName, Target, Version

DeploymentName = Annotated[str, Field(min_length=1, max_length=63)]


class CreateDeployment(ApiModel):
    """``POST api/deployments``: serve an approved version (all traffic, or a canary's share)."""

    model: ModelName
    version: Version
    target: Target = "staging"
    canary: int | None = None


class DescribeDeploymentByName(ApiModel):
    """``GET api/deployments/<name>`` (and the change endpoints' request)."""

    name: DeploymentName


class ListDeployments(ListRequest):
    """``GET api/deployments``: the deployments you may see."""


class Predict(ApiModel):
    """``POST api/deployments/<name>/predict``: rows as records, or columns as lists."""

    name: DeploymentName
    records: list[dict[str, Any]] | None = None
    columns: dict[str, list[Any]] | None = None


class DescribeServedVersion(ApiModel):
    """One version a deployment serves: its share, where it comes from, its server."""

    version: str
    percent: int
    approval_id: int
    digest: str
    run_id: str
    server: str  # ready | starting | failed | crashed | stopped | not started
    log_tail: str = ""
    restarts: int = 0  # automatic restarts in a row by the platform's supervisor


class DescribeDeployment(ApiModel):
    name: str
    model: str
    target: str
    team: str
    status: str  # active | undeployed
    traffic: list[DescribeServedVersion]
    previous_version: str | None = None
    endpoint: str  # the V2 base path under the platform service
    provenance: dict[str, Any] = {}
    created_by: str
    updated_at: datetime


class ListDeploymentsResponse(Page[DescribeDeployment]):
    pass


class PredictResponse(ApiModel):
    deployment: str
    version: str
    outputs: dict[str, list[Any]]
