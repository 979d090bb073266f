"""Governance: registration, approval requests and decisions, the audit log (DESIGN §5).

MLflow is reached with the platform's own tracking URI: the version facts a decision
binds to (run id, artifact digest, metrics, lineage) are read here, never taken from
the caller, and only from runs in experiments of the model's owning team (the store's
record). A request freezes the version's files into platform-owned storage first
(:mod:`..governance.frozen`); the request and its decisions bind to that copy's digest.
The registry mirror is best effort: the store is the source of truth.
"""

from __future__ import annotations

import logging

from ..api.governance import (
    CreateApprovalRequest,
    DecideApprovalRequest,
    DescribeApprovalRequest,
    DescribeApprovalRequestById,
    DescribeModelVersion,
    DescribeVersionAudit,
    ListApprovalRequests,
    ListApprovalRequestsResponse,
    ListAuditEvents,
    ListAuditEventsResponse,
    ListModelVersions,
    ListModelVersionsResponse,
    RegisterModel,
    VerifyAudit,
    VerifyAuditResponse,
)
from .endpoints import Area, Context, endpoint

log = logging.getLogger(__name__)


class GovernanceArea(Area):
    name = "governance"

    @property
    def policy(self):
        from ..governance.policy import Policy

        return Policy.from_settings(self.settings)

    def _mirror(self, request: DescribeApprovalRequest) -> None:
        from ..governance.registry import mirror

        try:
            mirror(self.settings, request.model, request.version, request.target, request.status)
        except Exception:  # noqa: BLE001 - the store is the source of truth; MLflow is a copy
            log.warning("Could not mirror %s to MLflow", request.subject, exc_info=True)

    @endpoint("POST", "api/models", RegisterModel, DescribeModelVersion, status=201)
    def register_model(self, context: Context, request: RegisterModel) -> DescribeModelVersion:
        """Register a run's logged model as a new version (the run's team must be yours).

        Nothing is claimed when registration fails: the name is checked first, the version
        made in MLflow, and only then the name claimed for the team (a version made while
        another team claimed the name at that very moment is withdrawn)."""
        from ..errors import PermissionDenied
        from ..governance import ownership, registry

        registry.check_model_name(request.model)
        identity = context.identity
        team = registry.check_run_team(self.settings, request.run_id, identity.teams, identity.user)
        store = self.resources.store
        owner = ownership.get_ownership(store, request.model)
        if owner is not None and owner.team != team:
            raise ownership.name_taken(request.model, owner.team)
        version = registry.register(
            self.settings, request.run_id, request.model, request.artifact, team
        )
        try:
            ownership.claim_model(store, context.identity, request.model, team)
        except PermissionDenied:
            if not version.existing:
                registry.withdraw(self.settings, request.model, version.version)
            raise
        return version

    @endpoint("POST", "api/approvals", CreateApprovalRequest, DescribeApprovalRequest, status=201)
    def request_approval(
        self, context: Context, request: CreateApprovalRequest
    ) -> DescribeApprovalRequest:
        """Ask for a model version to be approved for a target; the checks run at once.

        The version's files are downloaded (as the platform) and frozen into platform-owned,
        content-addressed storage before anything is recorded: a download that fails leaves
        no request, no event and no partial copy."""
        from ..governance import frozen, workflow
        from ..governance.checks import VersionInfo
        from ..governance.ownership import get_ownership
        from ..governance.registry import check_available, read_version

        store, identity = self.resources.store, context.identity
        owner = get_ownership(store, request.model)

        def record(info, digest: str = "") -> DescribeApprovalRequest:
            return workflow.request_approval(
                store, identity, request.model, request.version, request.target,
                request.reason or "", info, policy=self.policy, frozen_digest=digest,
            )  # fmt: skip

        if owner is None or owner.team not in identity.teams:
            check_available(self.settings)  # MLflow down is a 503, not "not registered"
            return record(VersionInfo())  # refused by the workflow (unknown model, other team)
        with frozen.staging(self.settings) as model_dir:
            info = read_version(
                self.settings, request.model, request.version, owner.team,
                keep_artifacts=model_dir,
            )  # fmt: skip
            if not info.exists:
                return record(info)  # not found, in the workflow's words
            copy = frozen.freeze(self.settings, model_dir)
        result = record(info, copy.digest)
        self._mirror(result)
        return result

    @endpoint("GET", "api/models", ListModelVersions, ListModelVersionsResponse)
    def list_model_versions(
        self, context: Context, request: ListModelVersions
    ) -> ListModelVersionsResponse:
        """Registered versions of your teams' models with their approval states."""
        from ..governance import versions
        from ..governance.registry import _client
        from ..tracking.connection import translated_errors

        with translated_errors(self.settings):
            return versions.list_versions(
                self.resources.store, _client(self.settings), context.identity,
                model=request.model, offset=request.after(), limit=request.limit,
                policy=self.policy, ui_base=self.settings.tracking_ui_url,
            )  # fmt: skip

    @endpoint(
        "GET", "api/models/{model}/versions/{version}/audit", DescribeVersionAudit,
        ListAuditEventsResponse,
    )  # fmt: skip
    def version_audit(self, context: Context, request: DescribeVersionAudit):
        """A version's audit trail: its requests and decisions (its team and reviewers)."""
        from ..governance import versions

        return versions.version_events(
            self.resources.store, context.identity, request.model, request.version,
            after_seq=request.after(), limit=request.limit,
        )  # fmt: skip

    @endpoint("GET", "api/approvals", ListApprovalRequests, ListApprovalRequestsResponse)
    def list_approvals(
        self, context: Context, request: ListApprovalRequests
    ) -> ListApprovalRequestsResponse:
        """Approval requests you may see (your teams', or every team's for reviewers)."""
        from ..governance.queries import list_requests

        return list_requests(
            self.resources.store, context.identity, pending=request.pending,
            model=request.model, after_id=request.after(), limit=request.limit,
            policy=self.policy,
        )  # fmt: skip

    @endpoint(
        "GET", "api/approvals/{request_id}", DescribeApprovalRequestById, DescribeApprovalRequest
    )
    def show_approval(
        self, context: Context, request: DescribeApprovalRequestById
    ) -> DescribeApprovalRequest:
        """One request with its checks (and their inputs) and decisions."""
        from ..governance.queries import get_request

        return get_request(
            self.resources.store, context.identity, request.request_id, policy=self.policy
        )

    @endpoint(
        "POST", "api/approvals/{request_id}/approve", DecideApprovalRequest, DescribeApprovalRequest
    )
    def approve(self, context: Context, request: DecideApprovalRequest) -> DescribeApprovalRequest:
        """Approve a request (a reviewer or the model's owner, never the requester)."""
        from ..governance import workflow
        from ..governance.frozen import require_intact
        from ..governance.ownership import get_ownership
        from ..governance.queries import get_request
        from ..governance.registry import read_version

        store = self.resources.store
        current = get_request(store, context.identity, request.request_id, policy=self.policy)
        owner = get_ownership(store, current.model)
        team = owner.team if owner is not None else current.requester_team
        info = read_version(self.settings, current.model, current.version, team)
        if current.frozen_digest:
            require_intact(self.settings, current.frozen_digest, current.id)
        result = workflow.approve(
            store, context.identity, request.request_id, request.comment or "", info,
            policy=self.policy,
        )  # fmt: skip
        self._mirror(result)
        return result

    @endpoint(
        "POST", "api/approvals/{request_id}/reject", DecideApprovalRequest, DescribeApprovalRequest
    )
    def reject(self, context: Context, request: DecideApprovalRequest) -> DescribeApprovalRequest:
        """Reject a request; a comment saying why is required."""
        from ..governance import workflow

        result = workflow.reject(
            self.resources.store, context.identity, request.request_id, request.comment or "",
            policy=self.policy,
        )  # fmt: skip
        self._mirror(result)
        return result

    @endpoint("GET", "api/audit/verify", VerifyAudit, VerifyAuditResponse)
    def audit_verify(self, context: Context, request: VerifyAudit) -> VerifyAuditResponse:
        """Re-compute the audit chain and name the first broken event (reviewers, admins)."""
        from ..governance import audit
        from ..governance.policy import check_audit_reader

        check_audit_reader(context.identity)
        return audit.verify(self.resources.store)

    @endpoint("GET", "api/audit/events", ListAuditEvents, ListAuditEventsResponse)
    def audit_events(self, context: Context, request: ListAuditEvents) -> ListAuditEventsResponse:
        """A page of the audit log in chain order (reviewers and admins)."""
        from ..governance import audit

        return audit.list_events(
            self.resources.store, context.identity, subject=request.subject,
            after_seq=request.after(), limit=request.limit,
        )  # fmt: skip
