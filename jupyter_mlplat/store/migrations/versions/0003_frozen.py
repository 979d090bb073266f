"""Frozen approved artifacts: the digest of the platform's copy on requests and decisions.

Revision ID: 0003_frozen
Revises: 0002_core
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_frozen"
down_revision = "0002_core"
branch_labels = None
depends_on = None

_TABLES = ("mlplat_approval_requests", "mlplat_decisions")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "frozen_digest", sa.String(64), server_default=sa.text("''"), nullable=False
                )
            )


def downgrade() -> None:
    for table in reversed(_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("frozen_digest")
