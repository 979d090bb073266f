"""Governance: model ownership, approval requests, checks, decisions, audit log.

Revision ID: 0001_governance
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_governance"
down_revision = None
branch_labels = None
depends_on = None

# Times are stored in UTC (jupyter_mlplat.store.models.UTCDateTime).
_OPEN = sa.text("status IN ('requested', 'approved', 'deployed')")


def upgrade() -> None:
    op.create_table(
        "mlplat_model_ownership",
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("team", sa.String(200), nullable=False),
        sa.Column("registered_by", sa.String(200), nullable=False),
        sa.Column("high_risk", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model", name="pk_mlplat_model_ownership"),
    )
    op.create_index("ix_mlplat_model_ownership_team", "mlplat_model_ownership", ["team"])

    op.create_table(
        "mlplat_approval_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("target", sa.String(20), nullable=False),
        sa.Column("requester", sa.String(200), nullable=False),
        sa.Column("requester_team", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("artifact_digest", sa.String(200), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mlplat_approval_requests"),
    )
    op.create_index(
        "uq_mlplat_approval_requests_open",
        "mlplat_approval_requests",
        ["model", "version", "target"],
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )
    op.create_index(
        "ix_mlplat_approval_requests_model_target",
        "mlplat_approval_requests",
        ["model", "target"],
    )
    op.create_index("ix_mlplat_approval_requests_status", "mlplat_approval_requests", ["status"])

    op.create_table(
        "mlplat_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["mlplat_approval_requests.id"],
            name="fk_mlplat_checks_request_id_mlplat_approval_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mlplat_checks"),
        sa.UniqueConstraint("request_id", "name", name="uq_mlplat_checks_request_id_name"),
    )
    op.create_index("ix_mlplat_checks_request_id", "mlplat_checks", ["request_id"])

    op.create_table(
        "mlplat_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("artifact_digest", sa.String(200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["mlplat_approval_requests.id"],
            name="fk_mlplat_decisions_request_id_mlplat_approval_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mlplat_decisions"),
        sa.UniqueConstraint(
            "request_id", "reviewer", name="uq_mlplat_decisions_request_id_reviewer"
        ),
    )
    op.create_index("ix_mlplat_decisions_request_id", "mlplat_decisions", ["request_id"])

    op.create_table(
        "mlplat_audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(600), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_mlplat_audit_events"),
        sa.UniqueConstraint("hash", name="uq_mlplat_audit_events_hash"),
    )
    op.create_index("ix_mlplat_audit_events_subject", "mlplat_audit_events", ["subject"])


def downgrade() -> None:
    op.drop_table("mlplat_audit_events")
    op.drop_table("mlplat_decisions")
    op.drop_table("mlplat_checks")
    op.drop_table("mlplat_approval_requests")
    op.drop_table("mlplat_model_ownership")
