"""identity platform: app credentials and roles, user passwords, grants, failures

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("roles", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("redirect_uris", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("public_client", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "identity_grants",
        sa.Column("handle", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("user_code", sa.String(length=16), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("handle"),
        sa.UniqueConstraint("user_code"),
    )
    with op.batch_alter_table("identity_grants", schema=None) as batch_op:
        batch_op.create_index("ix_identity_grants_expires", ["expires_at"], unique=False)
        batch_op.create_index(
            "ix_identity_grants_client", ["client_id", "kind", "expires_at"], unique=False
        )
    op.create_table(
        "identity_failures",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("identity_failures", schema=None) as batch_op:
        batch_op.create_index("ix_identity_failures_key", ["key", "at_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("identity_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_failures_key")
    op.drop_table("identity_failures")
    with op.batch_alter_table("identity_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_grants_client")
        batch_op.drop_index("ix_identity_grants_expires")
    op.drop_table("identity_grants")
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_column("public_client")
        batch_op.drop_column("redirect_uris")
        batch_op.drop_column("roles")
        batch_op.drop_column("secret_digest")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("password_hash")
