"""What governance returns: pure data (pydantic v2, verb-named), no rendering; and the
read-only queries that build it (:func:`get_request`, :func:`list_requests`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..errors import NotFoundError
from ..identity import Identity
from ..store.db import Store
from ..store.models import ApprovalRequest, AuditEvent, Check, Decision, ModelOwnership
from .policy import Policy, check_can_see, sees_everything


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DescribeModelOwnership(_View):
    """Who owns a registered model name."""

    model: str
    team: str
    registered_by: str
    high_risk: bool
    created_at: datetime

    @classmethod
    def of(cls, row: ModelOwnership, high_risk: bool | None = None) -> DescribeModelOwnership:
        return cls(
            model=row.model,
            team=row.team,
            registered_by=row.registered_by,
            high_risk=row.high_risk if high_risk is None else high_risk,
            created_at=row.created_at,
        )


class DescribeCheck(_View):
    """One automated check: its verdict and the inputs it judged."""

    name: str
    passed: bool
    inputs: dict[str, Any]
    message: str

    @classmethod
    def of(cls, row: Check) -> DescribeCheck:
        return cls(name=row.name, passed=row.passed, inputs=row.inputs or {}, message=row.message)


class DescribeDecision(_View):
    """A reviewer's verdict, bound to the run and artifact they saw."""

    reviewer: str
    verdict: str
    comment: str
    run_id: str
    artifact_digest: str
    decided_at: datetime

    @classmethod
    def of(cls, row: Decision) -> DescribeDecision:
        return cls(
            reviewer=row.reviewer,
            verdict=row.verdict,
            comment=row.comment,
            run_id=row.run_id,
            artifact_digest=row.artifact_digest,
            decided_at=row.decided_at,
        )


class DescribeApprovalRequest(_View):
    """An approval request with its checks and decisions."""

    id: int
    model: str
    version: str
    target: str
    status: str
    requester: str
    requester_team: str
    run_id: str
    artifact_digest: str
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

    @classmethod
    def of(cls, row: ApprovalRequest, high_risk: bool, required: int) -> DescribeApprovalRequest:
        checks = [DescribeCheck.of(c) for c in row.checks]
        decisions = [DescribeDecision.of(d) for d in row.decisions]
        return cls(
            id=row.id,
            model=row.model,
            version=row.version,
            target=row.target,
            status=row.status,
            requester=row.requester,
            requester_team=row.requester_team,
            run_id=row.run_id,
            artifact_digest=row.artifact_digest,
            reason=row.reason,
            metrics=row.metrics or {},
            high_risk=high_risk,
            approvals_required=required,
            approvals=sum(d.verdict == "approve" for d in decisions),
            checks_passed=all(c.passed for c in checks),
            created_at=row.created_at,
            updated_at=row.updated_at,
            checks=checks,
            decisions=decisions,
        )


class ListApprovalRequestsResponse(_View):
    """Approval requests the caller may see, oldest first."""

    requests: list[DescribeApprovalRequest]


class DescribeAuditEvent(_View):
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

    @classmethod
    def of(cls, row: AuditEvent) -> DescribeAuditEvent:
        return cls(
            seq=row.seq,
            time=row.time,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            before=row.before,
            after=row.after,
            reason=row.reason,
            prev_hash=row.prev_hash,
            hash=row.hash,
        )


class ListAuditEventsResponse(_View):
    """A page of audit events in chain order; ``next_seq`` continues after the last."""

    events: list[DescribeAuditEvent]
    next_seq: int | None = None


class VerifyResult(_View):
    """The outcome of re-computing the audit chain."""

    ok: bool
    events: int
    first_broken_seq: int | None = None
    reason: str = ""
    last_hash: str | None = None


# ---- reading ----


def request_not_found(request_id: int) -> NotFoundError:
    return NotFoundError(
        f"Approval request #{request_id} does not exist; list requests with "
        "`%mlplat approval list`."
    )


def describe_request(
    session: Session, row: ApprovalRequest, policy: Policy
) -> DescribeApprovalRequest:
    owner = session.get(ModelOwnership, row.model)
    flagged = bool(owner and owner.high_risk)
    return DescribeApprovalRequest.of(
        row, policy.is_high_risk(row.model, flagged), policy.approvals_required(row.model, flagged)
    )


def get_request(
    store: Store, identity: Identity, request_id: int, *, policy: Policy | None = None
) -> DescribeApprovalRequest:
    """One request with its checks and decisions (the caller's teams, or any for reviewers)."""
    policy = policy or Policy.from_settings()
    with store.session() as session:
        row = session.get(ApprovalRequest, int(request_id))
        if row is None:
            raise request_not_found(request_id)
        owner = session.get(ModelOwnership, row.model)
        check_can_see(identity, row.model, owner.team if owner else row.requester_team)
        return describe_request(session, row, policy)


def list_requests(
    store: Store,
    identity: Identity,
    pending: bool = False,
    model: str | None = None,
    *,
    limit: int = 500,
    policy: Policy | None = None,
) -> ListApprovalRequestsResponse:
    """The latest ``limit`` requests of the caller's teams (every team's for reviewers and
    admins), oldest first; ``pending`` keeps those awaiting review."""
    policy = policy or Policy.from_settings()
    query = (
        select(ApprovalRequest, ModelOwnership)
        .join(ModelOwnership, ModelOwnership.model == ApprovalRequest.model)
        .options(selectinload(ApprovalRequest.checks), selectinload(ApprovalRequest.decisions))
        .order_by(ApprovalRequest.id.desc())
        .limit(max(1, int(limit)))
    )
    if not sees_everything(identity):
        query = query.where(ModelOwnership.team.in_(identity.teams))
    if pending:
        query = query.where(ApprovalRequest.status == "requested")
    if model:
        query = query.where(ApprovalRequest.model == model)
    with store.session() as session:
        requests = [
            DescribeApprovalRequest.of(
                row,
                policy.is_high_risk(row.model, owner.high_risk),
                policy.approvals_required(row.model, owner.high_risk),
            )
            for row, owner in session.execute(query)
        ]
    return ListApprovalRequestsResponse(requests=requests[::-1])
