"""The approval policy: thresholds and risk flags from settings, and who may do what.

Who may act (DESIGN §4-5):

- a model's team members request approvals, deploy and retire its versions;
- a reviewer (role ``reviewer``) or the model's owner (the user who registered it)
  approves or rejects, but never the request's requester (four eyes);
- high-risk models need two distinct approving reviewers;
- reviewers and admins read every request and the audit log; others only their teams'.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import PermissionDenied, UsageError
from ..identity import ROLE_ADMIN, ROLE_REVIEWER, Identity
from ..settings import MlplatSettings
from ..store.models import TARGETS

POLICY_ACTOR = "mlplat-policy"


@dataclass(frozen=True)
class Policy:
    """What the automated checks demand; build it with :meth:`from_settings`."""

    metric: str = "accuracy"
    greater_is_better: bool = True
    min_improvement: float = 0.0
    min_metric: float | None = None
    baseline: str = "approved"  # approved | deployed | none
    required_lineage: tuple[str, ...] = (
        "run_id",
        "notebook_hash",
        "code_version",
        "feature_refs",
        "data_source",
    )
    high_risk_models: frozenset[str] = field(default_factory=frozenset)
    staging_auto_approval: bool = True

    @classmethod
    def from_settings(cls, settings: MlplatSettings) -> Policy:
        return cls(
            metric=settings.approval_metric,
            greater_is_better=settings.approval_metric_greater_is_better,
            min_improvement=settings.approval_min_improvement,
            min_metric=settings.approval_min_metric,
            baseline=settings.approval_baseline,
            required_lineage=tuple(settings.approval_required_lineage),
            high_risk_models=frozenset(settings.high_risk_models),
            staging_auto_approval=settings.staging_auto_approval,
        )

    def is_high_risk(self, model: str, flagged: bool) -> bool:
        return flagged or model in self.high_risk_models

    def approvals_required(self, model: str, flagged: bool) -> int:
        return 2 if self.is_high_risk(model, flagged) else 1

    def may_auto_approve(self, target: str, checks_passed: bool, high_risk: bool) -> bool:
        return (
            self.staging_auto_approval and target == "staging" and checks_passed and not high_risk
        )


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise UsageError(f"{target!r} is not a deployment target; use staging or production.")
    return target


def is_reviewer(identity: Identity) -> bool:
    return identity.has_role(ROLE_REVIEWER)


def sees_everything(identity: Identity) -> bool:
    """Reviewers and admins see every team's requests and the audit log."""
    return identity.has_role(ROLE_REVIEWER) or identity.has_role(ROLE_ADMIN)


def check_audit_reader(identity: Identity) -> Identity:
    """Reading the audit log needs the reviewer or admin role."""
    if not sees_everything(identity):
        raise PermissionDenied(
            f"Reading the audit log needs the reviewer or admin role, which {identity.user} "
            "does not have; ask a platform admin."
        )
    return identity


def check_team_member(identity: Identity, model: str, owner_team: str) -> None:
    """Acting on a model (request, deploy, retire) needs membership of its team (or admin)."""
    if owner_team not in identity.teams and not identity.has_role(ROLE_ADMIN):
        raise PermissionDenied(
            f"Model {model!r} belongs to team {owner_team!r} and you ({identity.user}) are not "
            f"a member; ask a member of {owner_team!r} to do it."
        )


def check_can_see(identity: Identity, model: str, owner_team: str) -> None:
    if not sees_everything(identity) and owner_team not in identity.teams:
        raise PermissionDenied(
            f"Model {model!r} belongs to team {owner_team!r} and you ({identity.user}) are not "
            f"a member; ask a member of {owner_team!r} or a reviewer."
        )


def check_can_decide(
    identity: Identity, request_id: int, model: str, owner: str, requester: str, verb: str
) -> None:
    """Approve / reject: a reviewer or the model's owner, never the requester."""
    if identity.user == requester:
        raise PermissionDenied(
            f"You ({identity.user}) requested approval #{request_id} yourself, so you cannot "
            f"{verb} it (four eyes); ask a reviewer."
        )
    if not is_reviewer(identity) and identity.user != owner:
        raise PermissionDenied(
            f"Only a reviewer or the owner of {model!r} ({owner}) can {verb} approval "
            f"#{request_id}; ask a member of the reviewers group."
        )
