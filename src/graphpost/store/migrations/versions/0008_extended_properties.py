"""extended properties: MAPI single- and multi-value properties of messages

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_extended_props",
        sa.Column(
            "message_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("prop_id", sa.Text(), nullable=False),
        sa.Column("multi", sa.Boolean(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["message_seq"], ["messages.seq"], ondelete="CASCADE"),
        sa.UniqueConstraint("message_seq", "prop_id", name="uq_extended_props_message_id"),
    )
    with op.batch_alter_table("message_extended_props", schema=None) as batch_op:
        batch_op.create_index("ix_extended_props_id", ["prop_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("message_extended_props", schema=None) as batch_op:
        batch_op.drop_index("ix_extended_props_id")
    op.drop_table("message_extended_props")
