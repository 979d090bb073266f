"""Job runs in the platform store: submit, claim, heartbeat, finish, cancel, interrupt, prune.

Every change of a run's status is one conditional UPDATE (``WHERE status = …``), so two
workers, two service replicas, or a cancel racing a finish, never both win: the loser sees
a row count of 0. A run's final status is set once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..errors import NotFoundError, PermissionDenied, UsageError
from ..identity import ROLE_ADMIN, Identity
from ..store.db import Store
from ..store.models import JOB_FINAL, JobRun, PipelineRun, utcnow

QUEUED, RUNNING = "queued", "running"
SUCCEEDED, FAILED, CANCELLED, INTERRUPTED, SKIPPED = JOB_FINAL


def check_team(identity: Identity, team: str | None) -> str:
    """The team a job of ``identity`` runs for: ``team`` if theirs, else their only one."""
    if team:
        if team not in identity.teams:
            raise PermissionDenied(
                f"{identity.user} is not in team {team!r}; run jobs for one of your teams: "
                f"{', '.join(identity.teams) or 'none'}."
            )
        return team
    if len(identity.teams) != 1:
        raise UsageError(
            "Say which team the job runs for (--team): you are in "
            f"{', '.join(identity.teams) or 'no team'}."
        )
    return identity.teams[0]


def can_see(identity: Identity, team: str) -> bool:
    """A team's jobs are its own (their notebooks and outputs are its data); admins see all."""
    return team in identity.teams or identity.has_role(ROLE_ADMIN)


def submit(
    store: Store, *, owner: str, team: str, notebook_path: str, digest: str,
    parameters: dict, profile: str, schedule_id: int | None = None,
    fire_time: datetime | None = None, status: str = QUEUED, reason: str = "",
    pipeline: dict | None = None, worker: str = "",
) -> JobRun:  # fmt: skip
    """A new run (queued, or final ``skipped`` with its reason). Raises IntegrityError when
    the schedule's firing at ``fire_time`` was claimed already."""
    now = utcnow()
    with store.transaction() as session:
        row = JobRun(
            schedule_id=schedule_id, fire_time=fire_time, owner=owner, team=team,
            notebook_path=notebook_path, snapshot_digest=digest, parameters=parameters,
            profile=profile, status=status, reason=reason, worker=worker, cancel_requested=False,
            started_at=now if status == RUNNING else None,
            cells_done=0, cells_total=0, mlflow_run_id="", created_at=now,
            finished_at=now if status in JOB_FINAL else None,
            kind="pipeline" if pipeline is not None else "notebook",
        )  # fmt: skip
        session.add(row)
        session.flush()
        if pipeline is not None:  # (its row with the run's: a worker never sees one alone)
            session.add(PipelineRun(run_id=row.id, **pipeline))
            session.flush()
        session.expunge(row)
    return row


def get(store: Store, identity: Identity, run_id: int, kind: str | None = None) -> JobRun:
    """Run ``run_id`` if the caller may see it (and it is of ``kind``, when given)."""
    with store.session() as session:
        row = session.get(JobRun, run_id)
        if row is not None:
            session.expunge(row)
    if row is None:
        listing = "pipeline list" if kind == "pipeline" else "job list"
        raise NotFoundError(f"There is no run {run_id}; `%mlplat {listing}` lists yours.")
    if not can_see(identity, row.team):
        raise PermissionDenied(
            f"Run {run_id} belongs to team {row.team!r}; you can see your teams' runs only."
        )
    if kind is not None and row.kind != kind:
        other = "pipeline status" if row.kind == "pipeline" else "job show"
        raise NotFoundError(
            f"Run {run_id} is a {row.kind.replace('notebook', 'job')} run, not a "
            f"{kind.replace('notebook', 'job')} run; `%mlplat {other} {run_id}` shows it."
        )
    return row


def find(store: Store, run_id: int) -> JobRun | None:
    with store.session() as session:
        row = session.get(JobRun, run_id)
        if row is not None:
            session.expunge(row)
        return row


def list_for(
    store: Store, identity: Identity, *, schedule_id: int | None = None,
    after: int | None = None, limit: int = 50, status: str | None = None,
    kind: str = "notebook",
) -> list[JobRun]:  # fmt: skip
    """Runs of ``kind`` the caller may see, newest first (``after``: ids below it)."""
    query = select(JobRun).where(JobRun.kind == kind).order_by(JobRun.id.desc()).limit(limit)
    if not identity.has_role(ROLE_ADMIN):
        query = query.where(JobRun.team.in_(identity.teams or ("",)))
    if schedule_id is not None:
        query = query.where(JobRun.schedule_id == schedule_id)
    if status is not None:
        query = query.where(JobRun.status == status)
    if after is not None:
        query = query.where(JobRun.id < after)
    with store.session() as session:
        rows = list(session.scalars(query))
        for row in rows:
            session.expunge(row)
    return rows


def claim_next(store: Store, worker: str) -> JobRun | None:
    """The oldest queued run, now running for ``worker``; None when none is queued."""
    with store.session() as session:
        candidates = list(
            session.scalars(
                select(JobRun.id).where(JobRun.status == QUEUED).order_by(JobRun.id).limit(8)
            )
        )
    for run_id in candidates:
        now = utcnow()
        with store.transaction() as session:
            done = session.execute(
                update(JobRun)
                .where(JobRun.id == run_id, JobRun.status == QUEUED)
                .values(status=RUNNING, worker=worker, started_at=now, heartbeat_at=now)
            )
        if done.rowcount == 1:
            return find(store, run_id)
    return None


def heartbeat(store: Store, worker: str, run_ids: list[int]) -> set[int]:
    """Refresh the heartbeat of ``worker``'s running runs; the ids whose cancel was asked."""
    if not run_ids:
        return set()
    with store.transaction() as session:
        session.execute(
            update(JobRun)
            .where(JobRun.id.in_(run_ids), JobRun.worker == worker, JobRun.status == RUNNING)
            .values(heartbeat_at=utcnow())
        )
        asked = session.scalars(
            select(JobRun.id).where(JobRun.id.in_(run_ids), JobRun.cancel_requested.is_(True))
        )
        return set(asked)


def record_progress(
    store: Store, run_id: int, done: int, total: int, mlflow_run_id: str = "",
    tasks: list | None = None,
):  # fmt: skip
    """A running run's cells (or a pipeline's tasks) done so far."""
    values = {"cells_done": done, "cells_total": total}
    if mlflow_run_id:
        values["mlflow_run_id"] = mlflow_run_id
    with store.transaction() as session:
        changed = session.execute(
            update(JobRun).where(JobRun.id == run_id, JobRun.status == RUNNING).values(**values)
        )
        if tasks is not None and changed.rowcount == 1:
            _record_tasks(session, run_id, tasks)


def _record_tasks(session, run_id: int, tasks: list) -> None:
    session.execute(update(PipelineRun).where(PipelineRun.run_id == run_id).values(tasks=tasks))


def finish(
    store: Store, run_id: int, worker: str, status: str, reason: str,
    failed_cell: dict | None = None, mlflow_run_id: str = "", cells: tuple[int, int] | None = None,
    tasks: list | None = None,
) -> bool:  # fmt: skip
    """Set the final status of ``worker``'s running run; False if it was not (any more)."""
    if status not in JOB_FINAL:
        raise ValueError(status)
    values = {
        "status": status,
        "reason": reason,
        "finished_at": utcnow(),
        "failed_cell": failed_cell,
    }
    if mlflow_run_id:
        values["mlflow_run_id"] = mlflow_run_id
    if cells is not None:
        values["cells_done"], values["cells_total"] = cells
    with store.transaction() as session:
        done = session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.status == RUNNING, JobRun.worker == worker)
            .values(**values)
        )
        if tasks is not None and done.rowcount == 1:
            _record_tasks(session, run_id, tasks)
    return done.rowcount == 1


def check_may_cancel(identity: Identity, row: JobRun) -> None:
    if row.team not in identity.teams and not identity.has_role(ROLE_ADMIN):
        raise PermissionDenied(
            f"Run {row.id} belongs to team {row.team!r}; only its team can cancel it."
        )


def request_cancel(store: Store, identity: Identity, run_id: int) -> JobRun:
    """Cancel a queued run at once; ask a running one's worker to stop it."""
    row = get(store, identity, run_id)
    check_may_cancel(identity, row)
    with store.transaction() as session:
        session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.status == QUEUED)
            .values(status=CANCELLED, reason=f"cancelled by {identity.user}", finished_at=utcnow())
        )
        session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.status == RUNNING)
            .values(cancel_requested=True)
        )
    return get(store, identity, run_id)


def interrupt_stale(store: Store, stale_after: float, workers_gone: tuple[str, ...] = ()) -> int:
    """Runs left running by a service that stopped: those of ``workers_gone`` (e.g. this
    host's previous incarnation) and those whose heartbeat is older than ``stale_after`` s
    become interrupted. The count."""
    cutoff = utcnow() - timedelta(seconds=stale_after)
    reason = "the platform service stopped while it ran; run it again if still needed"
    with store.transaction() as session:
        stale = (JobRun.heartbeat_at < cutoff) | JobRun.heartbeat_at.is_(None)
        if workers_gone:
            stale = stale | JobRun.worker.in_(workers_gone)
        done = session.execute(
            update(JobRun)
            # (a Kubeflow run has no worker of ours: KFP runs it, the pipelines area reads it)
            .where(JobRun.status == RUNNING, stale, ~JobRun.worker.startswith("kfp:"))
            .values(status=INTERRUPTED, reason=reason, finished_at=utcnow())
        )
    return done.rowcount


def interrupt_ids(store: Store, run_ids: list[int]) -> int:
    """The given runs, if still running, become interrupted (their processes are gone)."""
    reason = "the platform service stopped while it ran; run it again if still needed"
    with store.transaction() as session:
        done = session.execute(
            update(JobRun)
            .where(JobRun.id.in_(run_ids), JobRun.status == RUNNING)
            .values(status=INTERRUPTED, reason=reason, finished_at=utcnow())
        )
    return done.rowcount


def running_workers(store: Store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(select(JobRun.worker).where(JobRun.status == RUNNING)))


def prune(store: Store, older_than_days: float) -> list[int]:
    """Delete final runs finished more than ``older_than_days`` ago; their ids (the caller
    removes their files)."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    with store.transaction() as session:
        ids = list(
            session.scalars(
                select(JobRun.id).where(JobRun.status.in_(JOB_FINAL), JobRun.finished_at < cutoff)
            )
        )
        if ids:  # (a pipeline's row first: not every database enforces the foreign key)
            session.query(PipelineRun).filter(PipelineRun.run_id.in_(ids)).delete(
                synchronize_session=False
            )
            session.query(JobRun).filter(JobRun.id.in_(ids)).delete(synchronize_session=False)
    return ids
