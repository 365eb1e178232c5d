"""messages: an index of (seq, mailbox_id, received_at), so that a search sorts its hits
without reading each hit's whole row

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 17:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_messages_seq_cover", "messages", ["seq", "mailbox_id", "received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_messages_seq_cover", table_name="messages")
