"""subscriptions: change notification subscriptions and their undelivered notifications

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 13:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("creator_id", sa.String(64), nullable=False),
        sa.Column("delegated", sa.Boolean(), nullable=False),
        sa.Column("mailbox_id", sa.String(36), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("folder_id", sa.String(64), nullable=True),
        sa.Column("change_types", sa.String(32), nullable=False),
        sa.Column("notification_url", sa.Text(), nullable=False),
        sa.Column("lifecycle_url", sa.Text(), nullable=True),
        sa.Column("client_state", sa.Text(), nullable=True),
        sa.Column("tls_version", sa.String(8), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("reauth_ms", sa.BigInteger(), nullable=True),
        sa.Column("removed_ms", sa.BigInteger(), nullable=True),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("life_seq", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["mailbox_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_subscriptions_mailbox", ["mailbox_id"], unique=False)
        batch_op.create_index("ix_subscriptions_app", ["tenant_id", "app_id"], unique=False)
    op.create_table(
        "notifications",
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(1), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscription_id", "channel", "seq"),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriptions_app")
        batch_op.drop_index("ix_subscriptions_mailbox")
    op.drop_table("subscriptions")
