"""Platform core: idempotency keys of mutating requests; overrides on decisions.

Revision ID: 0002_core
Revises: 0001_governance
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_core"
down_revision = "0001_governance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlplat_idempotency_keys",
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("caller", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "caller", name="pk_mlplat_idempotency_keys"),
    )
    op.create_index(
        "ix_mlplat_idempotency_keys_created_at", "mlplat_idempotency_keys", ["created_at"]
    )
    with op.batch_alter_table("mlplat_decisions") as batch:
        batch.add_column(
            sa.Column("overrides", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("mlplat_decisions") as batch:
        batch.drop_column("overrides")
    op.drop_index("ix_mlplat_idempotency_keys_created_at", "mlplat_idempotency_keys")
    op.drop_table("mlplat_idempotency_keys")
