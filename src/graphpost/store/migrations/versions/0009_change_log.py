"""change log: every change to a mailbox's messages and folders, numbered in commit order

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_counters",
        sa.Column("mailbox_id", sa.String(length=36), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("horizon", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("mailbox_id"),
    )
    op.create_table(
        "changes",
        sa.Column("mailbox_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("folder_id", sa.String(length=64), nullable=False),
        sa.Column("prior_folder_id", sa.String(length=64), nullable=True),
        sa.Column("change_type", sa.String(length=8), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("mailbox_id", "seq"),
    )
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index("ix_changes_at", ["at_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_at")
    op.drop_table("changes")
    op.drop_table("change_counters")
