"""Deployments as records: which approved versions serve a (model, target), and how traffic
splits between them. Processes (local MLServer) and manifests (KServe) follow these records.

A deployment is named ``<model>-<target>`` (a DNS-1035 label, so the same name works as a
KServe InferenceService). Its versions are frozen copies of approved versions
(:class:`~jupyter_mlplat.serving.gate.Servable`). Every change writes one audit event in
the same transaction, and a concurrent change of the same deployment loses with a 409.

- ``deploy`` without a canary: the version takes all traffic; the one it replaces is kept
  for ``rollback``. With ``canary_percent`` P (1–99): it takes P% next to the primary, as
  KServe's ``canaryTrafficPercent`` does.
- ``promote``: the canary becomes the primary (100%).
- ``rollback``: drops a canary; without one, the previous primary comes back.
- ``undeploy``: the deployment stops serving (its record stays, marked ``undeployed``).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..errors import ConflictError, NotFoundError, PermissionDenied, UsageError
from ..governance import audit
from ..identity import ROLE_ADMIN, ROLE_REVIEWER, Identity
from ..store.db import Store
from ..store.models import Deployment, utcnow
from .gate import Servable, check_target
from .kubernetes import check_canary, check_name

ACTIVE, UNDEPLOYED = "active", "undeployed"


def deployment_name(model: str, target: str) -> str:
    return check_name(f"{model}-{check_target(target)}")


def _version(servable: Servable) -> dict:
    return {
        "version": servable.version,
        "approval_id": servable.approval_id,
        "digest": servable.frozen_digest,
        "run_id": servable.run_id,
    }


def snapshot(row: Deployment) -> dict:
    """What an audit event records of a deployment."""
    return {
        "status": row.status,
        "primary": row.primary,
        "canary": row.canary,
        "canary_percent": row.canary_percent,
        "previous": row.previous,
    }


def traffic(row: Deployment) -> list[tuple[dict, int]]:
    """The versions serving ``row`` with their percent of the traffic."""
    if row.status != ACTIVE:
        return []
    if row.canary:
        return [(row.primary, 100 - row.canary_percent), (row.canary, row.canary_percent)]
    return [(row.primary, 100)]


def pick(row: Deployment, draw: Callable[[], float] = random.random) -> dict:
    """The version one request goes to: the canary when ``draw()`` (uniform in [0, 1)) falls
    below its share, else the primary."""
    if row.status != ACTIVE:
        raise NotFoundError(f"Deployment {row.name!r} is undeployed; deploy it again first.")
    if row.canary and draw() * 100 < row.canary_percent:
        return row.canary
    return row.primary


def check_can_see(identity: Identity, row: Deployment) -> None:
    if row.team in identity.teams or identity.has_role(ROLE_ADMIN):
        return
    if identity.has_role(ROLE_REVIEWER):
        return
    raise PermissionDenied(
        f"Deployment {row.name!r} belongs to team {row.team!r}, and you ({identity.user}) "
        "are not in it."
    )


def check_can_change(identity: Identity, row: Deployment) -> None:
    if row.team in identity.teams or identity.has_role(ROLE_ADMIN):
        return
    raise PermissionDenied(
        f"Deployment {row.name!r} belongs to team {row.team!r}; only its team changes it."
    )


def find(store: Store, name: str) -> Deployment:
    """The record of ``name`` (detached), whoever asks; NotFoundError naming it."""
    with store.session() as session:
        row = session.scalars(select(Deployment).where(Deployment.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"There is no deployment named {name!r}; `%mlplat deployments` lists yours."
            )
        session.expunge(row)
    return row


def get(store: Store, identity: Identity, name: str) -> Deployment:
    """The record of ``name`` if ``identity`` may see it."""
    row = find(store, name)
    check_can_see(identity, row)
    return row


def list_for(
    store: Store, identity: Identity, after_id: int = 0, limit: int = 100
) -> list[Deployment]:
    """The deployments ``identity`` may see (their teams', or all for reviewers and
    admins), by id after ``after_id``."""
    with store.session() as session:
        query = (
            select(Deployment).where(Deployment.id > after_id).order_by(Deployment.id).limit(limit)
        )
        if not (identity.has_role(ROLE_ADMIN) or identity.has_role(ROLE_REVIEWER)):
            query = query.where(Deployment.team.in_(identity.teams or ("",)))
        rows = session.scalars(query).all()
        for row in rows:
            session.expunge(row)
    return list(rows)


def active(store: Store) -> list[Deployment]:
    """Every active deployment (what the local servers must serve)."""
    with store.session() as session:
        rows = session.scalars(select(Deployment).where(Deployment.status == ACTIVE)).all()
        for row in rows:
            session.expunge(row)
    return list(rows)


Prepare = Callable[[Deployment], None]


def deploy(
    store: Store,
    identity: Identity,
    servable: Servable,
    canary_percent: int | None = None,
    prepare: Prepare | None = None,
) -> Deployment:
    """Serve ``servable`` at ``<model>-<target>`` (all traffic, or a canary's share).

    ``prepare(row)`` runs once the change is known to be valid and before it is written,
    with the row as it will be (the local deployer starts the servers it needs there)."""
    name = deployment_name(servable.model, servable.target)
    canary_percent = check_canary(canary_percent)
    new = _version(servable)
    with store.session() as session:
        row = session.scalars(select(Deployment).where(Deployment.name == name)).first()
        exists = row is not None
    if not exists:
        if canary_percent is not None:
            raise UsageError(
                f"{name} serves nothing yet, so there is nothing to canary against; deploy "
                f"version {servable.version} without --canary first."
            )
        return _create(store, identity, servable, name, new, prepare)

    def change(row: Deployment) -> str:
        if row.status != ACTIVE:
            if canary_percent is not None:
                raise UsageError(
                    f"{name} is undeployed, so there is nothing to canary against; deploy "
                    f"version {servable.version} without --canary first."
                )
            row.status, row.primary, row.canary, row.canary_percent = ACTIVE, new, None, 0
            return "deployment.deploy"
        if canary_percent is None:
            if row.primary["version"] != new["version"]:
                row.previous = row.primary
            row.primary, row.canary, row.canary_percent = new, None, 0
            return "deployment.deploy"
        if row.primary["version"] == new["version"]:
            raise UsageError(
                f"Version {servable.version} already takes all of {name}'s traffic; canary "
                "another version."
            )
        row.canary, row.canary_percent = new, canary_percent
        return "deployment.canary"

    return _change(store, identity, name, change, prepare)


def promote(store: Store, identity: Identity, name: str) -> Deployment:
    def change(row: Deployment) -> str:
        _require_active(row)
        if not row.canary:
            raise ConflictError(
                f"{name} has no canary to promote; deploy one with --canary PERCENT first."
            )
        row.previous, row.primary, row.canary, row.canary_percent = (
            row.primary, row.canary, None, 0,
        )  # fmt: skip
        return "deployment.promote"

    return _change(store, identity, name, change)


def rollback(
    store: Store, identity: Identity, name: str, prepare: Prepare | None = None
) -> Deployment:
    def change(row: Deployment) -> str:
        _require_active(row)
        if row.canary:
            row.canary, row.canary_percent = None, 0
            return "deployment.rollback"
        if not row.previous:
            raise ConflictError(
                f"{name} has no earlier version to roll back to; it only ever served "
                f"version {row.primary['version']}."
            )
        row.primary, row.previous = row.previous, None
        return "deployment.rollback"

    return _change(store, identity, name, change, prepare)


def undeploy(store: Store, identity: Identity, name: str) -> Deployment:
    def change(row: Deployment) -> str:
        _require_active(row)
        row.status, row.canary, row.canary_percent = UNDEPLOYED, None, 0
        return "deployment.undeploy"

    return _change(store, identity, name, change)


def _require_active(row: Deployment) -> None:
    if row.status != ACTIVE:
        raise ConflictError(f"{row.name} is undeployed; deploy it again first.")


def _create(
    store: Store,
    identity: Identity,
    servable: Servable,
    name: str,
    new: dict,
    prepare: Prepare | None = None,
):
    if prepare is not None:
        prepare(
            Deployment(
                name=name,
                model=servable.model,
                target=servable.target,
                team=servable.team,
                status=ACTIVE,
                primary=new,
                canary=None,
                canary_percent=0,
            )  # fmt: skip
        )
    try:
        with store.transaction() as session:
            row = Deployment(
                name=name, model=servable.model, target=servable.target, team=servable.team,
                status=ACTIVE, primary=new, canary=None, canary_percent=0, previous=None,
                revision=1, created_by=identity.user,
            )  # fmt: skip
            session.add(row)
            session.flush()
            audit.append(session, identity.user, "deployment.deploy", f"deployment:{name}",
                         None, snapshot(row))  # fmt: skip
            session.flush()
            session.expunge(row)
    except IntegrityError as exc:
        raise ConflictError(
            f"Another deploy of {name} won the race just now; see `%mlplat deployments` "
            "and deploy again if you still want this version."
        ) from exc
    return row


def _change(
    store: Store, identity: Identity, name: str, change, prepare: Prepare | None = None
) -> Deployment:
    """Apply ``change(row) -> action`` to the row of ``name`` if nobody changed it meanwhile."""
    current = get(store, identity, name)
    check_can_change(identity, current)
    before, revision = snapshot(current), current.revision
    action = change(current)
    if prepare is not None:
        prepare(current)
    with store.transaction() as session:
        done = session.execute(
            update(Deployment)
            .where(Deployment.id == current.id, Deployment.revision == revision)
            .values(
                status=current.status,
                primary=current.primary,
                canary=current.canary,
                canary_percent=current.canary_percent,
                previous=current.previous,
                revision=revision + 1,
                updated_at=utcnow(),
            )  # fmt: skip
        )
        if done.rowcount != 1:
            raise ConflictError(
                f"{name} was changed by someone else just now; look at `%mlplat deployments` "
                "and try again."
            )
        audit.append(session, identity.user, action, f"deployment:{name}", before,
                     snapshot(current))  # fmt: skip
    current.revision = revision + 1
    return current
