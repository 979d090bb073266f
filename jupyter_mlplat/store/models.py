"""SQLAlchemy models of the platform state (governance).

The same tables serve SQLite (embedded) and PostgreSQL (Kubernetes); the schema is
created and upgraded by the Alembic migrations in ``migrations/`` (never by
``create_all``). Every table is prefixed ``mlplat_`` so the platform can share a
database with MLflow. Times are stored in UTC and always read back timezone-aware.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from ..times import iso as iso  # the one canonical time text

TARGETS = ("staging", "production")
STATUSES = ("requested", "approved", "rejected", "deployed", "retired")
# A request is open until it is rejected or retired: at most one per (model, version, target).
OPEN_STATUSES = ("requested", "approved", "deployed")
VERDICTS = ("approve", "reject")
GENESIS_HASH = "0" * 64

_OPEN_WHERE = text("status IN ('requested', 'approved', 'deployed')")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: non-finite floats become strings, unknown types ``str``.

    PostgreSQL's JSON rejects NaN, and the audit hash must see exactly what is stored.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no spaces, UTF-8 text: how the store writes JSON columns."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC; SQLite keeps no zone, so naive values read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ModelOwnership(Base):
    """Which team owns a registered model name: the first registrant's team."""

    __tablename__ = "mlplat_model_ownership"

    model: Mapped[str] = mapped_column(String(255), primary_key=True)
    team: Mapped[str] = mapped_column(String(200), index=True)
    registered_by: Mapped[str] = mapped_column(String(200))
    high_risk: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApprovalRequest(Base):
    """A request to promote one model version (bound to its run and artifact) to a target."""

    __tablename__ = "mlplat_approval_requests"
    __table_args__ = (
        Index(
            "uq_mlplat_approval_requests_open",
            "model",
            "version",
            "target",
            unique=True,
            sqlite_where=_OPEN_WHERE,
            postgresql_where=_OPEN_WHERE,
        ),
        Index("ix_mlplat_approval_requests_model_target", "model", "target"),
        Index("ix_mlplat_approval_requests_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(20))
    requester: Mapped[str] = mapped_column(String(200))
    requester_team: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[str] = mapped_column(String(64))
    artifact_digest: Mapped[str] = mapped_column(String(200))
    # The digest of the platform's frozen copy of the version's files, taken at request
    # time (see governance.frozen); '' for requests made before copies were frozen.
    frozen_digest: Mapped[str] = mapped_column(String(64), default="", server_default=text("''"))
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="requested")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    checks: Mapped[list[Check]] = relationship(
        back_populates="request", order_by="Check.id", cascade="all, delete-orphan"
    )
    decisions: Mapped[list[Decision]] = relationship(
        back_populates="request", order_by="Decision.id", cascade="all, delete-orphan"
    )

    @property
    def subject(self) -> str:
        return f"{self.model}/{self.version}/{self.target}"


class Check(Base):
    """One automated check of a request, with the inputs it judged."""

    __tablename__ = "mlplat_checks"
    __table_args__ = (UniqueConstraint("request_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("mlplat_approval_requests.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    passed: Mapped[bool] = mapped_column(Boolean)
    inputs: Mapped[dict] = mapped_column(JSON, default=dict)
    message: Mapped[str] = mapped_column(Text, default="")

    request: Mapped[ApprovalRequest] = relationship(back_populates="checks")


class Decision(Base):
    """A reviewer's verdict on a request, bound to the run and the frozen copy they saw."""

    __tablename__ = "mlplat_decisions"
    __table_args__ = (UniqueConstraint("request_id", "reviewer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("mlplat_approval_requests.id", ondelete="CASCADE"), index=True
    )
    reviewer: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(10))
    comment: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[str] = mapped_column(String(64))
    artifact_digest: Mapped[str] = mapped_column(String(200))
    # The frozen copy the reviewer approved or rejected (the request's, at decision time).
    frozen_digest: Mapped[str] = mapped_column(String(64), default="", server_default=text("''"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Names of the failed checks an approving reviewer overrode (with a comment).
    overrides: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))

    request: Mapped[ApprovalRequest] = relationship(back_populates="decisions")


class AuditEvent(Base):
    """One state change; ``hash`` chains it to the event before (see governance.audit)."""

    __tablename__ = "mlplat_audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(600), index=True)
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class IdempotencyKey(Base):
    """The first answer to a mutating request, kept so a retry with the same key gets it
    again instead of acting twice (see :mod:`jupyter_mlplat.service.idempotency`)."""

    __tablename__ = "mlplat_idempotency_keys"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    caller: Mapped[str] = mapped_column(String(200), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: in flight
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Deployment(Base):
    """One served endpoint per (model, target): its primary version, an optional canary
    with its share of traffic, and the version a rollback returns to. Each version is an
    approved version's frozen copy (approval id and digest recorded); ``revision`` makes
    concurrent changes of one deployment lose cleanly (409) instead of overwriting."""

    __tablename__ = "mlplat_deployments"
    __table_args__ = (UniqueConstraint("model", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    model: Mapped[str] = mapped_column(String(255))
    target: Mapped[str] = mapped_column(String(20))
    team: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    primary: Mapped[dict] = mapped_column(JSON)
    canary: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    canary_percent: Mapped[int] = mapped_column(Integer, default=0)
    previous: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted", "skipped")
JOB_FINAL = ("succeeded", "failed", "cancelled", "interrupted", "skipped")


class JobSchedule(Base):
    """A notebook snapshot run on a cron schedule, as its owner. ``next_fire_at`` is the
    next firing to claim; each claimed firing is a :class:`JobRun` with that time."""

    __tablename__ = "mlplat_job_schedules"
    __table_args__ = (UniqueConstraint("team", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(200), index=True)
    team: Mapped[str] = mapped_column(String(200), index=True)
    notebook_path: Mapped[str] = mapped_column(String(1024))
    snapshot_digest: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    profile: Mapped[str] = mapped_column(String(100), default="")
    cron: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    missed: Mapped[str] = mapped_column(String(20), default="run_once")
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    next_fire_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobRun(Base):
    """One execution of a notebook snapshot (run now, or a schedule's firing).

    ``(schedule_id, fire_time)`` is unique: a firing is claimed by inserting its row, so two
    service replicas never run it twice. A worker claims a queued run by moving it to
    running with its ``worker`` id, and keeps ``heartbeat_at`` fresh; a running run whose
    heartbeat stopped (its service died) becomes interrupted."""

    __tablename__ = "mlplat_job_runs"
    __table_args__ = (UniqueConstraint("schedule_id", "fire_time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("mlplat_job_schedules.id", ondelete="SET NULL"), nullable=True, index=True
    )
    fire_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    team: Mapped[str] = mapped_column(String(200), index=True)
    # "notebook"; or "pipeline": notebook_path is then the pipeline's name, the snapshot
    # its IR YAML and parameters its arguments (the rest in PipelineRun).
    kind: Mapped[str] = mapped_column(
        String(20), default="notebook", server_default=text("'notebook'"), index=True
    )
    notebook_path: Mapped[str] = mapped_column(String(1024))
    snapshot_digest: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    profile: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    worker: Mapped[str] = mapped_column(String(200), default="")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    cells_done: Mapped[int] = mapped_column(Integer, default=0)
    cells_total: Mapped[int] = mapped_column(Integer, default=0)
    failed_cell: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    mlflow_run_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PipelineRun(Base):
    """What a pipeline run has beyond its JobRun (same id): where it runs (``local``: the
    platform's pool with kfp.local; ``kfp``: a Kubeflow Pipelines API) and its tasks, each
    ``{"name", "state", "started", "ended", "outputs", "mlflow_run_id", "notebook"}``."""

    __tablename__ = "mlplat_pipeline_runs"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("mlplat_job_runs.id", ondelete="CASCADE"), primary_key=True
    )
    pipeline_name: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(10), default="local")
    experiment: Mapped[str] = mapped_column(String(200), default="")
    kfp_run_id: Mapped[str] = mapped_column(String(100), default="")
    tasks: Mapped[list] = mapped_column(JSON, default=list)
