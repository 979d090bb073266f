"""Deployments: one row per (model, target) with its primary, canary and previous versions.

Revision ID: 0004_deployments
Revises: 0003_frozen
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Times are stored in UTC (jupyter_mlplat.store.models.UTCDateTime).

revision = "0004_deployments"
down_revision = "0003_frozen"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlplat_deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("target", sa.String(20), nullable=False),
        sa.Column("team", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("primary", sa.JSON, nullable=False),
        sa.Column("canary", sa.JSON, nullable=True),
        sa.Column("canary_percent", sa.Integer, nullable=False),
        sa.Column("previous", sa.JSON, nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_mlplat_deployments_name"),
        sa.UniqueConstraint("model", "target", name="uq_mlplat_deployments_model_target"),
    )
    op.create_index("ix_mlplat_deployments_team", "mlplat_deployments", ["team"])


def downgrade() -> None:
    op.drop_index("ix_mlplat_deployments_team", "mlplat_deployments")
    op.drop_table("mlplat_deployments")
