"""permissions: mailbox delegation and application access policies

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 07:10:30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox_grants",
        sa.Column("mailbox_id", sa.String(length=36), nullable=False),
        sa.Column("delegate_id", sa.String(length=36), nullable=False),
        sa.Column("rights", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["delegate_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["mailbox_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("mailbox_id", "delegate_id"),
    )
    op.create_table(
        "app_access_restrictions",
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id"),
    )
    op.create_table(
        "app_access_policies",
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("mailbox_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["mailbox_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", "mailbox_id"),
    )


def downgrade() -> None:
    op.drop_table("app_access_policies")
    op.drop_table("app_access_restrictions")
    op.drop_table("mailbox_grants")
