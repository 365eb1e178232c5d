"""mailbox settings, master categories, Focused Inbox overrides, and the index of a folder's
messages by inference classification

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_messages_folder_inference",
        "messages",
        ["folder_id", "inference", "received_at", "seq"],
    )
    op.create_table(
        "mailbox_settings",
        sa.Column("mailbox_id", sa.String(length=36), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("reply_epoch", sa.BigInteger(), nullable=False),
        sa.Column("modified_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["mailbox_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("mailbox_id"),
    )
    op.create_table(
        "master_categories",
        sa.Column("mailbox_id", sa.String(length=36), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("name_lower", sa.Text(), nullable=False),
        sa.Column("color", sa.String(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["mailbox_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("mailbox_id", "id"),
    )
    op.create_index(
        "ix_master_categories_name",
        "master_categories",
        ["mailbox_id", "name_lower"],
        unique=True,
    )
    op.create_table(
        "inference_overrides",
        sa.Column("mailbox_id", sa.String(length=36), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("classify_as", sa.String(length=8), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["mailbox_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("mailbox_id", "id"),
    )
    op.create_index(
        "ix_inference_overrides_address",
        "inference_overrides",
        ["mailbox_id", "address"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_inference_overrides_address", table_name="inference_overrides")
    op.drop_table("inference_overrides")
    op.drop_index("ix_master_categories_name", table_name="master_categories")
    op.drop_table("master_categories")
    op.drop_table("mailbox_settings")
    op.drop_index("ix_messages_folder_inference", table_name="messages")
