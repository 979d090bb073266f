"""Cron schedules in the platform store, and the claiming of their firings.

The platform service (not a user's server) fires schedules, so a stopped or culled server
changes nothing. Each tick, :func:`fire_due` claims every due firing by inserting its run
with the schedule's id and fire time, which are unique together: when two replicas tick at
once, one insert wins and the other gets an IntegrityError and moves on.

Missed firings (the service was down at their time) follow the schedule's ``missed``
policy: ``run_once`` (the default) runs the latest missed firing once and records how many
were missed in its reason; ``skip`` records the latest as ``skipped``. A firing while the
schedule's previous run is still queued or running is recorded as ``skipped`` (no overlap).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..errors import ConflictError, NotFoundError, PermissionDenied, UsageError
from ..identity import ROLE_ADMIN, Identity
from ..store.db import Store
from ..store.models import JobRun, JobSchedule, utcnow
from . import cron, runs

log = logging.getLogger(__name__)
MISSED_POLICIES = ("run_once", "skip")
# A firing found later than this after its time counts as missed (the service was away).
LATE_AFTER = timedelta(minutes=2)


def create(
    store: Store, identity: Identity, *, name: str, team: str, notebook_path: str,
    digest: str, parameters: dict, profile: str, expression: str, timezone: str,
    missed: str, min_interval: float,
) -> JobSchedule:  # fmt: skip
    """A new schedule (its first firing the next after now); 409 when the team has one of
    that name."""
    if missed not in MISSED_POLICIES:
        raise UsageError(f"missed must be one of {', '.join(MISSED_POLICIES)}, not {missed!r}.")
    expression = cron.check(expression, timezone, min_interval)
    now = utcnow()
    try:
        with store.transaction() as session:
            row = JobSchedule(
                name=name, owner=identity.user, team=team, notebook_path=notebook_path,
                snapshot_digest=digest, parameters=parameters, profile=profile,
                cron=expression, timezone=timezone, missed=missed, paused=False,
                next_fire_at=cron.next_after(expression, timezone, now),
                created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(row)
            session.flush()
            session.expunge(row)
    except IntegrityError as exc:
        raise ConflictError(
            f"Team {team} already has a schedule named {name!r}; pick another --name or "
            "delete that one first."
        ) from exc
    return row


def get(store: Store, identity: Identity, schedule_id: int) -> JobSchedule:
    with store.session() as session:
        row = session.get(JobSchedule, schedule_id)
        if row is not None:
            session.expunge(row)
    if row is None:
        raise NotFoundError(
            f"There is no schedule {schedule_id}; `%mlplat job list --schedules` lists yours."
        )
    if not runs.can_see(identity, row.team):
        raise PermissionDenied(
            f"Schedule {schedule_id} belongs to team {row.team!r}; you can see your teams' "
            "schedules only."
        )
    return row


def list_for(store: Store, identity: Identity) -> list[JobSchedule]:
    query = select(JobSchedule).order_by(JobSchedule.id)
    if not identity.has_role(ROLE_ADMIN):
        query = query.where(JobSchedule.team.in_(identity.teams or ("",)))
    with store.session() as session:
        rows = list(session.scalars(query))
        for row in rows:
            session.expunge(row)
    return rows


def set_paused(store: Store, identity: Identity, schedule_id: int, paused: bool) -> JobSchedule:
    """Pause, or resume (the next firing counted from now: firings while paused are not
    missed ones)."""
    row = get(store, identity, schedule_id)
    _check_can_change(identity, row)
    now = utcnow()
    values = {"paused": paused, "updated_at": now}
    if not paused:
        values["next_fire_at"] = cron.next_after(row.cron, row.timezone, now)
    with store.transaction() as session:
        session.execute(update(JobSchedule).where(JobSchedule.id == schedule_id).values(**values))
    return get(store, identity, schedule_id)


def delete(store: Store, identity: Identity, schedule_id: int) -> JobSchedule:
    """Remove the schedule; its runs stay (their schedule id becomes empty)."""
    row = get(store, identity, schedule_id)
    _check_can_change(identity, row)
    with store.transaction() as session:
        session.execute(
            update(JobRun).where(JobRun.schedule_id == schedule_id).values(schedule_id=None)
        )
        session.query(JobSchedule).filter(JobSchedule.id == schedule_id).delete()
    return row


def _check_can_change(identity: Identity, row: JobSchedule) -> None:
    if row.team not in identity.teams and not identity.has_role(ROLE_ADMIN):
        raise PermissionDenied(
            f"Schedule {row.id} belongs to team {row.team!r}; only its team can change it."
        )


def fire_due(store: Store, now: datetime | None = None) -> list[JobRun]:
    """Claim every due firing of every active schedule; the runs made (queued or skipped)."""
    now = now or utcnow()
    with store.session() as session:
        due_rows = list(
            session.scalars(
                select(JobSchedule).where(
                    JobSchedule.paused.is_(False), JobSchedule.next_fire_at <= now
                )
            )
        )
        for row in due_rows:
            session.expunge(row)
    made = []
    for schedule in due_rows:
        run = _fire(store, schedule, now)
        if run is not None:
            made.append(run)
    return made


def _fire(store: Store, schedule: JobSchedule, now: datetime) -> JobRun | None:
    fired, following = cron.due(schedule.cron, schedule.timezone, schedule.next_fire_at, now)
    # Move the schedule on first, conditionally: of two replicas one moves it, and only
    # that one claims (the unique firing row guards the rest).
    with store.transaction() as session:
        moved = session.execute(
            update(JobSchedule)
            .where(
                JobSchedule.id == schedule.id,
                JobSchedule.next_fire_at == schedule.next_fire_at,
            )
            .values(next_fire_at=following)
        )
    if moved.rowcount != 1 or not fired:
        return None
    latest = fired[-1]
    missed = len(fired) - 1 + (1 if now - latest > LATE_AFTER else 0)
    status, reason = runs.QUEUED, ""
    if missed:
        since = fired[0].isoformat(timespec="minutes")
        if schedule.missed == "skip":
            status = runs.SKIPPED
            reason = f"missed {len(fired)} firing(s) since {since} while the platform was down"
        else:
            reason = f"run once for {len(fired)} missed firing(s) since {since}"
    if status == runs.QUEUED:
        busy = _unfinished_run(store, schedule.id)
        if busy is not None:
            status, reason = runs.SKIPPED, f"run {busy} of this schedule was still unfinished"
    try:
        run = runs.submit(
            store, owner=schedule.owner, team=schedule.team,
            notebook_path=schedule.notebook_path, digest=schedule.snapshot_digest,
            parameters=schedule.parameters, profile=schedule.profile,
            schedule_id=schedule.id, fire_time=latest, status=status, reason=reason,
        )  # fmt: skip
    except IntegrityError:
        log.info("firing %s of schedule %s was claimed elsewhere", latest, schedule.id)
        return None
    log.info("schedule %s fired at %s: run %s %s", schedule.id, latest, run.id, status)
    return run


def _unfinished_run(store: Store, schedule_id: int) -> int | None:
    with store.session() as session:
        return session.scalars(
            select(JobRun.id).where(
                JobRun.schedule_id == schedule_id,
                JobRun.status.in_((runs.QUEUED, runs.RUNNING)),
            )
        ).first()
