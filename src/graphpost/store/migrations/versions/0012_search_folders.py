"""mail search folders: a saved filter over source folders, beside the folder's row

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_search_folders",
        sa.Column("folder_id", sa.String(length=64), nullable=False),
        sa.Column("filter_query", sa.Text(), nullable=False),
        sa.Column("source_ids", sa.Text(), nullable=False),
        sa.Column("include_nested", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["folder_id"], ["folders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("folder_id"),
    )


def downgrade() -> None:
    op.drop_table("mail_search_folders")
