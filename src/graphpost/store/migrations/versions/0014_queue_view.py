"""the queue view: deliveries by state, newest first

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 17:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deliveries_state_seq", "deliveries", ["state", "seq"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_state_seq", table_name="deliveries")
