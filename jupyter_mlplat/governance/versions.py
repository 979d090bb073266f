"""Registered model versions with their approval state, and one version's audit trail
(the side panel's Models tab).

The names come from the store's ownership records (which team owns which model), the
versions from MLflow's registry (read as the platform), the states from the store's
requests. Members see their teams' models; reviewers and admins see every team's, as
they see every team's requests.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..api.governance import (
    DescribeModelVersionState,
    ListAuditEventsResponse,
    ListModelVersionsResponse,
)
from ..identity import Identity
from ..store.db import Store
from ..store.models import ApprovalRequest, AuditEvent, ModelOwnership
from .policy import Policy, check_can_see, sees_everything
from .queries import describe_event, describe_row

PAGE = 1000  # MLflow's page of versions
NAMES_PER_SEARCH = 100


def _visible_models(store: Store, identity: Identity, model: str | None) -> dict[str, object]:
    query = select(ModelOwnership).order_by(ModelOwnership.model)
    if model:
        query = query.where(ModelOwnership.model == model)
    if not sees_everything(identity):
        query = query.where(ModelOwnership.team.in_(identity.teams))
    with store.session() as session:
        return {row.model: row for row in session.scalars(query).all()}


def _registry_versions(client, names: list[str]) -> list:
    """Every version of ``names`` in MLflow's registry: one ``name IN (...)`` search per
    ``NAMES_PER_SEARCH`` names (a search per name took 3x as long for 10 models). Names
    are registered through :func:`.registry.check_model_name` (letters, digits, ``_-.``), so
    they need no quoting inside the filter."""
    wanted = set(names)
    found = []
    ordered = sorted(wanted)
    for start in range(0, len(ordered), NAMES_PER_SEARCH):
        chunk = ordered[start : start + NAMES_PER_SEARCH]
        listed = ", ".join(f"'{name}'" for name in chunk if "'" not in name)
        token = None
        while listed:
            page = client.search_model_versions(
                filter_string=f"name IN ({listed})", max_results=PAGE, page_token=token
            )
            found += [v for v in page if v.name in wanted]
            token = page.token
            if not token:
                break
    return found


def list_versions(
    store: Store,
    client,
    identity: Identity,
    *,
    model: str | None,
    offset: int,
    limit: int,
    policy: Policy,
    ui_base: str = "",
) -> ListModelVersionsResponse:
    """A page of versions (by model name, newest version first), each with its requests."""
    owners = _visible_models(store, identity, model)
    if not owners:
        return ListModelVersionsResponse(items=[])
    versions = sorted(
        _registry_versions(client, list(owners)), key=lambda v: (v.name, -int(v.version))
    )
    page = versions[offset : offset + limit]
    wanted = {(v.name, str(v.version)) for v in page}
    requests: dict[tuple[str, str], list] = {}
    with store.session() as session:
        rows = session.scalars(
            select(ApprovalRequest)
            .options(selectinload(ApprovalRequest.checks), selectinload(ApprovalRequest.decisions))
            .where(ApprovalRequest.model.in_({name for name, _ in wanted}))
            .order_by(ApprovalRequest.id.desc())
        ).all()
        for row in rows:
            if (row.model, row.version) in wanted:
                owner = owners[row.model]
                requests.setdefault((row.model, row.version), []).append(
                    describe_row(
                        row,
                        policy.is_high_risk(row.model, owner.high_risk),
                        policy.approvals_required(row.model, owner.high_risk),
                    )  # fmt: skip
                )
    items = []
    base = ui_base.rstrip("/") if ui_base.startswith(("http://", "https://", "/")) else ""
    for v in page:
        owner, mine = owners[v.name], requests.get((v.name, str(v.version)), [])
        items.append(
            DescribeModelVersionState(
                model=v.name,
                version=str(v.version),
                team=owner.team,
                run_id=v.run_id or "",
                high_risk=policy.is_high_risk(v.name, owner.high_risk),
                created_at=v.creation_timestamp and _utc(v.creation_timestamp),
                state=mine[0].status if mine else "unrequested",
                requests=mine,
                mlflow_url=f"{base}/#/models/{v.name}/versions/{v.version}" if base else "",
            )  # fmt: skip
        )
    more = offset + limit < len(versions)
    return ListModelVersionsResponse(items=items, next_cursor=str(offset + limit) if more else None)


def _utc(ms: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC)


def version_events(
    store: Store, identity: Identity, model: str, version: str, *, after_seq: int, limit: int
) -> ListAuditEventsResponse:
    """The audit trail of one version (the events of its requests and their decisions,
    subjects ``<model>/<version>/<target>``), for the model's team and for reviewers;
    oldest first."""
    with store.session() as session:
        owner = session.get(ModelOwnership, model)
    if owner is None:
        from ..errors import NotFoundError

        raise NotFoundError(
            f"Model {model!r} is not registered with the platform; register a run's model "
            "with `%mlplat register`."
        )
    check_can_see(identity, model, owner.team)
    prefix = f"{model}/{version}/"
    query = (
        select(AuditEvent)
        .where(AuditEvent.seq > after_seq)
        .where(
            (AuditEvent.subject == f"{model}/{version}")
            | AuditEvent.subject.startswith(prefix, autoescape=True)
        )
        .order_by(AuditEvent.seq)
        .limit(limit + 1)
    )
    with store.session() as session:
        rows = session.scalars(query).all()
        events = [describe_event(r) for r in rows[:limit]]
    more = len(rows) > limit
    return ListAuditEventsResponse(items=events, next_cursor=str(events[-1].seq) if more else None)
