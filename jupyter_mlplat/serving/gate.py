"""What a deploy may serve: a version approved for its target, from its intact frozen copy.

DESIGN §5: deploying needs an approval for that version and target, and serves the frozen
copy after checking its digest. Everything here is read from the platform store and the
platform-owned frozen folder, never from MLflow tags a user could have written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from ..errors import ConflictError, PermissionDenied, UsageError
from ..governance import frozen
from ..governance.ownership import owner_of
from ..identity import ROLE_ADMIN, Identity
from ..settings import MlplatSettings
from ..store.db import Store
from ..store.models import ApprovalRequest

TARGETS = ("staging", "production")


@dataclass(frozen=True)
class Servable:
    """An approved version's frozen files and the facts that link them to the approval."""

    model: str
    version: str
    target: str
    team: str
    approval_id: int
    run_id: str
    frozen_digest: str
    model_path: Path


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise UsageError(
            f"Target {target!r} is not one of {', '.join(TARGETS)}; "
            "deploy with --target staging or --target production."
        )
    return target


def servable(
    store: Store,
    settings: MlplatSettings,
    identity: Identity,
    model: str,
    version: str,
    target: str = "staging",
) -> Servable:
    """The frozen copy ``identity`` may deploy for ``model`` ``version`` to ``target``.

    Raises NotFoundError (model not registered), PermissionDenied (another team's model, or
    no approval for that target: the sentence names what is missing), ConflictError (the
    frozen copy changed or was never made).
    """
    check_target(target)
    version = str(version)
    with store.session() as session:
        owner = owner_of(session, model)
        if owner.team not in identity.teams and not identity.has_role(ROLE_ADMIN):
            raise PermissionDenied(
                f"Model {model!r} belongs to team {owner.team!r}, and you ({identity.user}) "
                "are not in it; only its team deploys it."
            )
        rows = session.scalars(
            select(ApprovalRequest)
            .where(ApprovalRequest.model == model, ApprovalRequest.version == version)
            .order_by(ApprovalRequest.id.desc())
        ).all()
        approved = {r.target: r for r in rows if r.status == "approved"}
        request = approved.get(target)
        if request is None:
            raise PermissionDenied(_missing_approval(model, version, target, approved, rows))
        if not request.frozen_digest:
            raise ConflictError(
                f"Approval #{request.id} of {model} version {version} has no frozen copy "
                "(it predates them); request approval again so the platform freezes the files."
            )
        facts = (request.id, request.run_id, request.frozen_digest, owner.team)
    approval_id, run_id, digest, team = facts
    folder = frozen.require_intact(settings, digest, approval_id)
    return Servable(
        model=model,
        version=version,
        target=target,
        team=team,
        approval_id=approval_id,
        run_id=run_id,
        frozen_digest=digest,
        model_path=folder / frozen.MODEL_DIR,
    )


def _missing_approval(model, version, target, approved: dict, rows: list) -> str:
    ask = f"`%mlplat approval request {model} {version} --target {target}`"
    pending = [r for r in rows if r.target == target and r.status == "requested"]
    if pending:
        return (
            f"Version {version} of {model} is waiting for a reviewer on request "
            f"#{pending[0].id} for {target}; it can be deployed once that is approved."
        )
    if approved:
        others = " and ".join(sorted(approved))
        return (
            f"Version {version} of {model} is approved for {others}, not {target}; "
            f"request {target} approval with {ask}."
        )
    return f"Version {version} of {model} has no approval for {target}; request it with {ask}."
