"""Jobs: cron schedules of notebook snapshots and the runs of notebooks.

Revision ID: 0005_jobs
Revises: 0004_deployments
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Times are stored in UTC (jupyter_mlplat.store.models.UTCDateTime).

revision = "0005_jobs"
down_revision = "0004_deployments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlplat_job_schedules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("team", sa.String(200), nullable=False),
        sa.Column("notebook_path", sa.String(1024), nullable=False),
        sa.Column("snapshot_digest", sa.String(64), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("missed", sa.String(20), nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("team", "name", name="uq_mlplat_job_schedules_team_name"),
    )
    for column in ("owner", "team", "next_fire_at"):
        op.create_index(f"ix_mlplat_job_schedules_{column}", "mlplat_job_schedules", [column])
    op.create_table(
        "mlplat_job_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "schedule_id",
            sa.Integer,
            sa.ForeignKey("mlplat_job_schedules.id", ondelete="SET NULL"),
            nullable=True,
        ),  # fmt: skip
        sa.Column("fire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("team", sa.String(200), nullable=False),
        sa.Column("notebook_path", sa.String(1024), nullable=False),
        sa.Column("snapshot_digest", sa.String(64), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("cells_done", sa.Integer, nullable=False),
        sa.Column("cells_total", sa.Integer, nullable=False),
        sa.Column("failed_cell", sa.JSON, nullable=True),
        sa.Column("mlflow_run_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint(
            "schedule_id", "fire_time", name="uq_mlplat_job_runs_schedule_id_fire_time"
        ),
    )
    for column in ("schedule_id", "owner", "team", "status", "created_at"):
        op.create_index(f"ix_mlplat_job_runs_{column}", "mlplat_job_runs", [column])


def downgrade() -> None:
    for column in ("schedule_id", "owner", "team", "status", "created_at"):
        op.drop_index(f"ix_mlplat_job_runs_{column}", "mlplat_job_runs")
    op.drop_table("mlplat_job_runs")
    for column in ("owner", "team", "next_fire_at"):
        op.drop_index(f"ix_mlplat_job_schedules_{column}", "mlplat_job_schedules")
    op.drop_table("mlplat_job_schedules")
