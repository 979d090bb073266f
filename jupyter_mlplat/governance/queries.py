"""Read-only governance queries and the conversion of rows to the REST schemas of
:mod:`jupyter_mlplat.api.governance` (which know nothing of SQLAlchemy)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..api.governance import (
    DescribeApprovalRequest,
    DescribeAuditEvent,
    DescribeCheck,
    DescribeDecision,
    DescribeModelOwnership,
    ListApprovalRequestsResponse,
)
from ..errors import NotFoundError
from ..identity import Identity
from ..store.db import Store
from ..store.models import ApprovalRequest, AuditEvent, ModelOwnership
from .policy import Policy, check_can_see, sees_everything

_REQUEST_COLUMNS = (
    "id", "model", "version", "target", "status", "requester", "requester_team", "run_id",
    "artifact_digest", "frozen_digest", "reason", "created_at", "updated_at",
)  # fmt: skip


def describe_ownership(row: ModelOwnership) -> DescribeModelOwnership:
    return DescribeModelOwnership.model_validate(row)


def describe_event(row: AuditEvent) -> DescribeAuditEvent:
    return DescribeAuditEvent.model_validate(row)


def describe_row(row: ApprovalRequest, high_risk: bool, required: int) -> DescribeApprovalRequest:
    """A request row as its REST schema (checks and decisions from their rows)."""
    checks = [DescribeCheck.model_validate(c) for c in row.checks]
    decisions = [
        DescribeDecision.model_validate(d).model_copy(update={"overrides": list(d.overrides or [])})
        for d in row.decisions
    ]
    return DescribeApprovalRequest(
        **{name: getattr(row, name) for name in _REQUEST_COLUMNS},
        metrics=row.metrics or {},
        high_risk=high_risk,
        approvals_required=required,
        approvals=sum(d.verdict == "approve" for d in decisions),
        checks_passed=all(c.passed for c in checks),
        checks=checks,
        decisions=decisions,
    )


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
    return describe_row(
        row, policy.is_high_risk(row.model, flagged), policy.approvals_required(row.model, flagged)
    )


def get_request(
    store: Store, identity: Identity, request_id: int, *, policy: Policy | None = None
) -> DescribeApprovalRequest:
    """One request with its checks and decisions (the caller's teams, or any for reviewers)."""
    policy = policy or Policy()
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
    after_id: int = 0,
    limit: int = 100,
    policy: Policy | None = None,
) -> ListApprovalRequestsResponse:
    """A page of the requests of the caller's teams (every team's for reviewers and admins),
    oldest first, after request ``after_id``; ``pending`` keeps those awaiting review.
    ``next_cursor`` is set when there are more."""
    policy = policy or Policy()
    limit = max(1, min(int(limit), 1000))
    query = (
        select(ApprovalRequest, ModelOwnership)
        .join(ModelOwnership, ModelOwnership.model == ApprovalRequest.model)
        .options(selectinload(ApprovalRequest.checks), selectinload(ApprovalRequest.decisions))
        .where(ApprovalRequest.id > int(after_id))
        .order_by(ApprovalRequest.id)
        .limit(limit + 1)
    )
    if not sees_everything(identity):
        query = query.where(ModelOwnership.team.in_(identity.teams))
    if pending:
        query = query.where(ApprovalRequest.status == "requested")
    if model:
        query = query.where(ApprovalRequest.model == model)
    with store.session() as session:
        rows = session.execute(query).all()
        items = [
            describe_row(
                row,
                policy.is_high_risk(row.model, owner.high_risk),
                policy.approvals_required(row.model, owner.high_risk),
            )
            for row, owner in rows[:limit]
        ]
    more = len(rows) > limit
    return ListApprovalRequestsResponse(
        items=items, next_cursor=str(items[-1].id) if more else None
    )
