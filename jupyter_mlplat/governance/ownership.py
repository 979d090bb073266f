"""Model ownership: the first registrant's team owns a model name (DESIGN §4).

The registration code calls :func:`claim_model` after MLflow registered a version;
approvals, deployments and visibility all follow the owning team. A model can be
flagged high risk here (admins) or by configuration (``high_risk_models``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..api.governance import DescribeModelOwnership
from ..errors import NotFoundError, PermissionDenied, UsageError
from ..identity import ROLE_ADMIN, Identity
from ..store.db import Store
from ..store.models import ModelOwnership, utcnow
from . import audit
from .queries import describe_ownership

T = TypeVar("T")


def retry_on_conflict(attempt: Callable[[], T]) -> T:
    """Run ``attempt``; if a concurrent writer won a uniqueness race, run it once more."""
    try:
        return attempt()
    except IntegrityError:
        return attempt()


def owner_of(session: Session, model: str) -> ModelOwnership:
    row = session.get(ModelOwnership, model)
    if row is None:
        raise NotFoundError(
            f"Model {model!r} is not registered with the platform; register it with "
            f"`%mlplat register RUN_ID --model {model}` first."
        )
    return row


def name_taken(model: str, team: str) -> PermissionDenied:
    return PermissionDenied(
        f"Model name {model!r} is owned by team {team!r}; choose another name or ask a "
        f"member of {team!r}."
    )


def get_ownership(store: Store, model: str) -> DescribeModelOwnership | None:
    """Who owns ``model`` (None when nobody has registered it yet)."""
    with store.session() as session:
        row = session.get(ModelOwnership, model)
        return describe_ownership(row) if row is not None else None


def claim_model(
    store: Store, identity: Identity, model: str, team: str | None = None, *, high_risk=False
) -> DescribeModelOwnership:
    """Record ``team`` (default: the caller's first) as owner of ``model`` if nobody is;
    the first registrant's team keeps the name, another team gets PermissionDenied."""
    team = identity.check_team(team or identity.default_team)
    if not model or not model.strip():
        raise UsageError("A model name is required; pass --model NAME.")

    def attempt() -> DescribeModelOwnership:
        with store.transaction() as session:
            row = session.get(ModelOwnership, model, with_for_update=True)
            if row is not None:
                if row.team != team:
                    raise name_taken(model, row.team)
                return describe_ownership(row)
            row = ModelOwnership(
                model=model,
                team=team,
                registered_by=identity.user,
                high_risk=bool(high_risk),
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            after = {"team": team, "registered_by": identity.user, "high_risk": bool(high_risk)}
            audit.append(session, identity.user, "model.claim", model, None, after, "registered")
            return describe_ownership(row)

    return retry_on_conflict(attempt)


def set_high_risk(
    store: Store, identity: Identity, model: str, high_risk: bool, reason: str
) -> DescribeModelOwnership:
    """Flag or unflag ``model`` as high risk (platform admins only)."""
    if not identity.has_role(ROLE_ADMIN):
        raise PermissionDenied(
            f"Only platform admins can change a model's risk flag and {identity.user} is not "
            "one; ask a platform admin."
        )
    with store.transaction() as session:
        row = session.get(ModelOwnership, model, with_for_update=True) or owner_of(session, model)
        if row.high_risk != bool(high_risk):
            before = {"high_risk": row.high_risk}
            row.high_risk = bool(high_risk)
            session.flush()
            audit.append(
                session, identity.user, "model.risk", model, before, {"high_risk": row.high_risk},
                reason,
            )  # fmt: skip
        return describe_ownership(row)
