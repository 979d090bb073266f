"""The approval workflow (DESIGN §5) on the platform store; ownership re-exported.

A version's path: requested → (automated checks) → approved | rejected → deployed
→ retired. Every function runs in one transaction; every state change writes exactly
one audit event in that same transaction, so a failure leaves nothing half-written.
The caller (registration, REST, magics) supplies what MLflow knows about a version as
a :class:`~.checks.VersionInfo`; nothing here talks to MLflow or HTTP.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..api.governance import DescribeApprovalRequest
from ..errors import ConflictError, NotFoundError, PermissionDenied, UsageError
from ..identity import Identity
from ..store.db import Store
from ..store.models import (
    OPEN_STATUSES,
    ApprovalRequest,
    Check,
    Decision,
    ModelOwnership,
    json_safe,
    utcnow,
)
from . import audit
from .checks import VersionInfo, run_checks
from .ownership import claim_model as claim_model  # re-exported: the whole workflow is here
from .ownership import get_ownership as get_ownership
from .ownership import owner_of, retry_on_conflict
from .ownership import set_high_risk as set_high_risk
from .policy import (
    POLICY_ACTOR,
    Policy,
    check_can_decide,
    check_target,
    check_team_member,
    is_reviewer,
)
from .queries import describe_request, request_not_found
from .queries import get_request as get_request
from .queries import list_requests as list_requests


class StateConflict(ConflictError):
    """The request is not in a state that allows this (HTTP 409)."""


def _lock_request(session: Session, request_id: int) -> ApprovalRequest:
    query = select(ApprovalRequest).where(ApprovalRequest.id == int(request_id)).with_for_update()
    row = session.scalars(query).first()
    if row is None:
        raise request_not_found(request_id)
    return row


def _open_request(
    session: Session, model: str, version: str, target: str
) -> ApprovalRequest | None:
    query = (
        select(ApprovalRequest)
        .where(
            ApprovalRequest.model == model,
            ApprovalRequest.version == version,
            ApprovalRequest.target == target,
            ApprovalRequest.status.in_(OPEN_STATUSES),
        )
        .with_for_update()
    )
    return session.scalars(query).first()


def _transition(
    session: Session,
    row: ApprovalRequest,
    status: str,
    actor: str,
    action: str,
    reason: str,
    **after,
) -> None:
    """Move ``row`` to ``status`` and write its one audit event."""
    before = {"status": row.status}
    row.status, row.updated_at = status, utcnow()
    session.flush()
    audit.append(session, actor, action, row.subject, before, {"status": status, **after}, reason)


def _changed(row: ApprovalRequest, current: VersionInfo) -> str:
    """Why ``current`` is not the version ``row`` was requested for ('' when it is)."""
    if not current.exists:
        return "it no longer exists in the registry"
    parts = []
    if current.run_id != row.run_id:
        parts.append(f"run {row.run_id} → {current.run_id}")
    if current.artifact_digest != row.artifact_digest:
        parts.append(f"artifact {row.artifact_digest} → {current.artifact_digest}")
    return ", ".join(parts)


# ---- requests and decisions ----


def request_approval(
    store: Store,
    identity: Identity,
    model: str,
    version: str | int,
    target: str,
    reason: str,
    version_info: VersionInfo,
    *,
    policy: Policy | None = None,
    frozen_digest: str = "",
) -> DescribeApprovalRequest:
    """Ask to promote ``model`` ``version`` to ``target``; runs and records the checks.

    ``frozen_digest`` names the platform's frozen copy of the version's files (see
    :mod:`.frozen`), taken by the caller before this transaction; the request and every
    decision on it are bound to it.

    An open request for the same version and target is returned as it is. A ``staging``
    request whose checks all pass for a model that is not high risk is approved at once
    by ``mlplat-policy``; everything else waits for people.
    """
    policy = policy or Policy()
    version, target = str(version), check_target(target)
    if not version_info.exists:
        raise NotFoundError(
            f"Model {model!r} version {version} does not exist in the registry; check the "
            "name and version."
        )

    def attempt() -> DescribeApprovalRequest:
        with store.transaction() as session:
            owner = owner_of(session, model)
            if owner.team not in identity.teams:
                raise PermissionDenied(
                    f"Model {model!r} belongs to team {owner.team!r} and you ({identity.user}) "
                    f"are not a member; ask a member of {owner.team!r} to request approval."
                )
            existing = _open_request(session, model, version, target)
            if existing is not None:
                changed = _changed(existing, version_info)
                if not changed:
                    return describe_request(session, existing, policy)
                if existing.status != "requested":
                    raise StateConflict(
                        f"Model {model!r} version {version} changed since request "
                        f"#{existing.id} was {existing.status} ({changed}); retire it first, "
                        "then request approval again."
                    )
                _transition(
                    session, existing, "rejected", POLICY_ACTOR, "approval.supersede",
                    f"the version changed ({changed}); superseded by a new request",
                )  # fmt: skip
            return _create(session, policy, identity, owner, model, version, target, reason,
                           version_info, frozen_digest)  # fmt: skip

    return retry_on_conflict(attempt)


def _create(
    session: Session,
    policy: Policy,
    identity: Identity,
    owner: ModelOwnership,
    model: str,
    version: str,
    target: str,
    reason: str,
    info: VersionInfo,
    frozen_digest: str = "",
) -> DescribeApprovalRequest:
    now = utcnow()
    row = ApprovalRequest(
        model=model,
        version=version,
        target=target,
        requester=identity.user,
        requester_team=owner.team,
        run_id=info.run_id,
        artifact_digest=info.artifact_digest,
        frozen_digest=frozen_digest or "",
        metrics=json_safe(dict(info.metrics or {})),
        status="requested",
        reason=reason or "",
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    results = run_checks(session, policy, identity, owner.team, model, version, target, info)
    for r in results:
        row.checks.append(Check(name=r.name, passed=r.passed, inputs=r.inputs, message=r.message))
    session.flush()
    passed = all(r.passed for r in results)
    after = {
        "status": "requested",
        "run_id": info.run_id,
        "artifact_digest": info.artifact_digest,
        "frozen_digest": frozen_digest or "",
        "checks": {r.name: r.passed for r in results},
    }
    audit.append(session, identity.user, "approval.request", row.subject, None, after, reason)
    high_risk = policy.is_high_risk(model, owner.high_risk)
    if policy.may_auto_approve(target, passed, high_risk):
        comment = "Every automated check passed and the model is not high risk."
        row.decisions.append(_decision(row, POLICY_ACTOR, "approve", comment))
        _transition(session, row, "approved", POLICY_ACTOR, "approval.approve", comment)
    return describe_request(session, row, policy)


def _decision(
    row: ApprovalRequest, reviewer: str, verdict: str, comment: str, overrides=()
) -> Decision:
    return Decision(
        reviewer=reviewer,
        verdict=verdict,
        comment=comment or "",
        run_id=row.run_id,
        artifact_digest=row.artifact_digest,
        frozen_digest=row.frozen_digest or "",
        decided_at=utcnow(),
        overrides=list(overrides),
    )


def failed_checks(row: ApprovalRequest) -> list[str]:
    """Names of the request's automated checks that failed, in the order they ran."""
    return [c.name for c in sorted(row.checks, key=lambda c: c.id or 0) if not c.passed]


def _open_for_decision(row: ApprovalRequest, identity: Identity, verb: str) -> None:
    if row.status != "requested":
        raise StateConflict(
            f"Approval request #{row.id} is already {row.status}; only requests awaiting "
            f"review can be {verb}d."
        )
    if any(d.reviewer == identity.user for d in row.decisions):
        raise StateConflict(
            f"You ({identity.user}) already decided on approval request #{row.id}; another "
            "reviewer must decide."
        )


def approve(
    store: Store,
    identity: Identity,
    request_id: int,
    comment: str,
    current: VersionInfo,
    *,
    policy: Policy | None = None,
) -> DescribeApprovalRequest:
    """Approve a request for the exact version it names (``current``: what MLflow says now).

    Approving a request whose automated checks failed overrides them: it needs a comment
    saying why, and the overridden checks are recorded on the decision and in the audit
    event (``"overrides": [...]``). High-risk models stay ``requested`` until two distinct
    reviewers have approved.
    """
    policy = policy or Policy()
    with store.transaction() as session:
        row = _lock_request(session, request_id)
        owner = owner_of(session, row.model)
        check_can_decide(identity, row.id, row.model, owner.registered_by, row.requester, "approve")
        high_risk = policy.is_high_risk(row.model, owner.high_risk)
        if high_risk and not is_reviewer(identity):
            raise PermissionDenied(
                f"Model {row.model!r} is high risk, so only reviewers can approve it; ask a "
                "member of the reviewers group."
            )
        _open_for_decision(row, identity, "approve")
        changed = _changed(row, current)
        if changed:
            raise StateConflict(
                f"Model {row.model!r} version {row.version} changed since request #{row.id} "
                f"({changed}), so it cannot be approved; request approval again."
            )
        overrides = failed_checks(row)
        if overrides and not (comment or "").strip():
            raise UsageError(
                f"Approval request #{row.id} failed the checks {', '.join(overrides)}, so "
                "approving it overrides them and needs a comment saying why; pass "
                "--comment TEXT."
            )
        row.decisions.append(_decision(row, identity.user, "approve", comment, overrides))
        session.flush()
        approvals = sum(
            d.verdict == "approve" and d.reviewer != POLICY_ACTOR for d in row.decisions
        )
        required = policy.approvals_required(row.model, owner.high_risk)
        if approvals >= required:
            _transition(session, row, "approved", identity.user, "approval.approve", comment,
                        approvals=approvals, overrides=overrides,
                        frozen_digest=row.frozen_digest)  # fmt: skip
        else:
            audit.append(
                session, identity.user, "approval.review", row.subject,
                {"status": row.status, "approvals": approvals - 1},
                {"status": row.status, "approvals": approvals, "required": required,
                 "overrides": overrides, "frozen_digest": row.frozen_digest},
                comment,
            )  # fmt: skip
        return describe_request(session, row, policy)


def reject(
    store: Store,
    identity: Identity,
    request_id: int,
    comment: str,
    *,
    policy: Policy | None = None,
) -> DescribeApprovalRequest:
    """Reject a request; the comment (why) is required."""
    if not comment or not comment.strip():
        raise UsageError("Rejecting needs a comment saying why; pass --comment TEXT.")
    policy = policy or Policy()
    with store.transaction() as session:
        row = _lock_request(session, request_id)
        owner = owner_of(session, row.model)
        check_can_decide(identity, row.id, row.model, owner.registered_by, row.requester, "reject")
        _open_for_decision(row, identity, "reject")
        row.decisions.append(_decision(row, identity.user, "reject", comment))
        session.flush()
        _transition(session, row, "rejected", identity.user, "approval.reject", comment)
        return describe_request(session, row, policy)


# ---- deployment ----


def _approved(
    session: Session, identity: Identity, model: str, version: str, target: str, current
) -> ApprovalRequest:
    owner = owner_of(session, model)
    check_team_member(identity, model, owner.team)
    row = _open_request(session, model, version, target)
    if row is None or row.status == "requested":
        waiting = f" (request #{row.id} awaits review)" if row is not None else ""
        raise PermissionDenied(
            f"Model {model!r} version {version} has no approval for {target}{waiting}; "
            f"request one with `%mlplat approval request {model} {version} --target {target}`."
        )
    changed = _changed(row, current) if current is not None else ""
    if changed:
        raise StateConflict(
            f"Model {model!r} version {version} changed since it was approved ({changed}); "
            "request approval again."
        )
    return row


def check_deployable(
    store: Store,
    identity: Identity,
    model: str,
    version: str | int,
    target: str,
    current: VersionInfo | None = None,
    *,
    policy: Policy | None = None,
) -> DescribeApprovalRequest:
    """The approval that allows deploying this version to ``target`` (raises if none)."""
    policy = policy or Policy()
    target = check_target(target)
    with store.session() as session:
        row = _approved(session, identity, model, str(version), target, current)
        return describe_request(session, row, policy)


def mark_deployed(
    store: Store,
    identity: Identity,
    model: str,
    version: str | int,
    target: str,
    reason: str = "",
    current: VersionInfo | None = None,
    *,
    policy: Policy | None = None,
) -> DescribeApprovalRequest:
    """Record that the approved version now serves ``target`` (a no-op when it already does)."""
    policy = policy or Policy()
    target = check_target(target)
    with store.transaction() as session:
        row = _approved(session, identity, model, str(version), target, current)
        if row.status != "deployed":
            _transition(session, row, "deployed", identity.user, "approval.deploy", reason)
        return describe_request(session, row, policy)


def retire(
    store: Store,
    identity: Identity,
    model: str,
    version: str | int,
    target: str,
    reason: str = "",
    *,
    policy: Policy | None = None,
) -> DescribeApprovalRequest:
    """Retire an approved or deployed version at ``target``; deploying it again needs a new
    approval."""
    policy = policy or Policy()
    version, target = str(version), check_target(target)
    with store.transaction() as session:
        check_team_member(identity, model, owner_of(session, model).team)
        row = _open_request(session, model, version, target)
        if row is None:
            raise NotFoundError(
                f"Model {model!r} version {version} has no approved or deployed request for "
                f"{target}; list them with `%mlplat approval list`."
            )
        if row.status == "requested":
            raise StateConflict(
                f"Approval request #{row.id} still awaits review; reject it instead of retiring."
            )
        _transition(session, row, "retired", identity.user, "approval.retire", reason)
        return describe_request(session, row, policy)
