"""Schemas of registration, approvals and the audit log (DESIGN §5)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from .base import ApiModel, FreeText, Id, ListRequest, OrmModel, Page

ModelName = Annotated[str, Field(min_length=1, max_length=128)]
Version = Annotated[str, Field(pattern=r"^[0-9]{1,18}$")]
RunId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
Target = Annotated[str, Field(pattern=r"^(staging|production)$")]


# ---- requests ----


class RegisterModel(ApiModel):
    """``POST api/models``: register a run's logged model as a version of ``model``."""

    model: ModelName
    run_id: RunId
    artifact: Annotated[str, Field(min_length=1, max_length=512)] | None = None


class CreateApprovalRequest(ApiModel):
    """``POST api/approvals``: ask for a version to be approved for a target."""

    model: ModelName
    version: Version
    target: Target = "staging"
    reason: FreeText | None = None


class ListApprovalRequests(ListRequest):
    """``GET api/approvals``: requests the caller may see, oldest first."""

    pending: bool = False
    model: ModelName | None = None


class DescribeApprovalRequestById(ApiModel):
    """``GET api/approvals/<id>``."""

    request_id: Id


class DecideApprovalRequest(ApiModel):
    """``POST api/approvals/<id>/approve|reject``: a reviewer's decision."""

    request_id: Id
    comment: FreeText | None = None


class VerifyAudit(ApiModel):
    """``GET api/audit/verify``."""


class ListAuditEvents(ListRequest):
    """``GET api/audit/events``: events in chain order (reviewers and admins)."""

    subject: Annotated[str, Field(max_length=300)] | None = None
    limit: Annotated[int, Field(ge=1, le=5000)] = 1000


class ListModelVersions(ListRequest):
    """``GET api/models``: registered versions of your teams' models (every team's for
    reviewers), by model name and newest version first (``cursor``: an offset)."""

    model: ModelName | None = None


class DescribeVersionAudit(ListRequest):
    """``GET api/models/<model>/versions/<version>/audit``: that version's audit trail."""

    model: ModelName
    version: Version


# ---- responses ----


class DescribeModelVersion(ApiModel):
    """A registered model version; ``existing`` when the run was registered before."""

    model: str
    version: str
    run_id: str
    source: str
    artifact_digest: str
    existing: bool = False

    def __repr__(self) -> str:
        again = " (already registered)" if self.existing else ""
        return (
            f"Registered {self.model} version {self.version} from run {self.run_id}{again} "
            f"(artifact sha256 {self.artifact_digest[:12]}…)"
        )


class DescribeModelOwnership(OrmModel):
    """Who owns a registered model name."""

    model: str
    team: str
    registered_by: str
    high_risk: bool
    created_at: datetime


class DescribeCheck(OrmModel):
    """One automated check: its verdict and the inputs it judged."""

    name: str
    passed: bool
    inputs: dict[str, Any]
    message: str


class DescribeDecision(OrmModel):
    """A reviewer's verdict, bound to the run and the frozen copy they saw
    (``frozen_digest``: the SHA-256 of the platform's copy of the version's files)."""

    reviewer: str
    verdict: str
    comment: str
    run_id: str
    artifact_digest: str
    frozen_digest: str = ""
    decided_at: datetime
    overrides: list[str] = []


class DescribeApprovalRequest(OrmModel):
    """An approval request with its checks and decisions; ``frozen_digest`` names the
    platform's frozen copy of the version's files taken at request time (what decisions
    approve and deploys serve), '' for requests made before copies were frozen."""

    id: int
    model: str
    version: str
    target: str
    status: str
    requester: str
    requester_team: str
    run_id: str
    artifact_digest: str
    frozen_digest: str = ""
    reason: str
    metrics: dict[str, Any]
    high_risk: bool
    approvals_required: int
    approvals: int
    checks_passed: bool
    created_at: datetime
    updated_at: datetime
    checks: list[DescribeCheck]
    decisions: list[DescribeDecision]

    @property
    def subject(self) -> str:
        return f"{self.model}/{self.version}/{self.target}"


class ListApprovalRequestsResponse(Page[DescribeApprovalRequest]):
    """A page of approval requests, oldest first."""


class DescribeAuditEvent(OrmModel):
    """One entry of the hash-chained audit log."""

    seq: int
    time: datetime
    actor: str
    action: str
    subject: str
    before: Any = None
    after: Any = None
    reason: str
    prev_hash: str
    hash: str


class ListAuditEventsResponse(Page[DescribeAuditEvent]):
    """A page of audit events in chain order."""


class VerifyAuditResponse(ApiModel):
    """The outcome of re-computing the audit chain."""

    ok: bool
    events: int
    first_broken_seq: int | None = None
    reason: str = ""
    last_hash: str | None = None


class DescribeModelVersionState(ApiModel):
    """A registered version, its approval state (the newest request's status, or
    ``unrequested``) and its requests, newest first."""

    model: str
    version: str
    team: str
    run_id: str
    high_risk: bool
    created_at: datetime | None = None
    state: str
    requests: list[DescribeApprovalRequest]
    mlflow_url: str = ""


class ListModelVersionsResponse(Page[DescribeModelVersionState]):
    """A page of model versions."""
