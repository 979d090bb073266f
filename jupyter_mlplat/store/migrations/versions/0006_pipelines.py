"""Pipelines: a run's kind (a notebook or a pipeline) and each pipeline run's tasks.

Revision ID: 0006_pipelines
Revises: 0005_jobs
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_pipelines"
down_revision = "0005_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mlplat_job_runs") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(20), nullable=False, server_default="notebook")
        )
        batch.create_index("ix_mlplat_job_runs_kind", ["kind"])
    op.create_table(
        "mlplat_pipeline_runs",
        sa.Column(
            "run_id",
            sa.Integer,
            sa.ForeignKey("mlplat_job_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),  # fmt: skip
        sa.Column("pipeline_name", sa.String(200), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("kfp_run_id", sa.String(100), nullable=False),
        sa.Column("tasks", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mlplat_pipeline_runs")
    with op.batch_alter_table("mlplat_job_runs") as batch:
        batch.drop_index("ix_mlplat_job_runs_kind")
        batch.drop_column("kind")
