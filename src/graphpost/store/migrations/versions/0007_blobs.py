"""blobs: content-addressed attachment bytes, upload sessions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:45:00

The bytes of every attachment move from ``attachments.content`` into ``blobs`` (one row per
distinct SHA-256, counting the attachments that use it) and ``blob_chunks`` (1 MiB rows), one
attachment at a time, so that no step holds more than one attachment in memory.
"""

from __future__ import annotations

import hashlib
import time

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CHUNK = 1024 * 1024


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("refs", sa.BigInteger(), nullable=False),
        sa.Column("location", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.create_index("ix_blobs_unreferenced", ["refs"], unique=False)
    op.create_table(
        "blob_chunks",
        sa.Column("location", sa.String(length=80), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("location", "n"),
    )
    op.create_table(
        "upload_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("mailbox_id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.String(length=80), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("is_inline", sa.Boolean(), nullable=False),
        sa.Column("content_id", sa.Text(), nullable=True),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["mailbox_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("upload_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_upload_sessions_expiry", ["expires_at"], unique=False)

    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mime_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("blobs_held", sa.Text(), nullable=True))
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("blob_digest", sa.String(length=64), nullable=True))
    _move_contents()
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.alter_column("blob_digest", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("content")
        batch_op.create_index("ix_attachments_blob", ["blob_digest"], unique=False)
        batch_op.create_foreign_key(
            "fk_attachments_blob_digest_blobs", "blobs", ["blob_digest"], ["digest"]
        )


def _move_contents() -> None:
    """Each attachment's bytes into a blob (one attachment in memory at a time)."""
    bind = op.get_bind()
    now = int(time.time())
    ids = [row[0] for row in bind.execute(sa.text("SELECT id FROM attachments ORDER BY id"))]
    for attachment_id in ids:
        content = bind.execute(
            sa.text("SELECT content FROM attachments WHERE id = :id"), {"id": attachment_id}
        ).scalar_one()
        data = bytes(content)
        digest = hashlib.sha256(data).hexdigest()
        found = bind.execute(
            sa.text("SELECT refs FROM blobs WHERE digest = :d"), {"d": digest}
        ).first()
        if found is None:
            bind.execute(
                sa.text(
                    "INSERT INTO blobs (digest, size, refs, location, created_at) "
                    "VALUES (:d, :s, 1, :d, :t)"
                ),
                {"d": digest, "s": len(data), "t": now},
            )
            for n, start in enumerate(range(0, max(len(data), 1), CHUNK)):
                bind.execute(
                    sa.text("INSERT INTO blob_chunks (location, n, data) VALUES (:d, :n, :b)"),
                    {"d": digest, "n": n, "b": data[start : start + CHUNK]},
                )
        else:
            bind.execute(
                sa.text("UPDATE blobs SET refs = refs + 1 WHERE digest = :d"), {"d": digest}
            )
        bind.execute(
            sa.text("UPDATE attachments SET blob_digest = :d WHERE id = :id"),
            {"d": digest, "id": attachment_id},
        )


def downgrade() -> None:
    if (
        op.get_bind()
        .execute(sa.text("SELECT count(*) FROM submissions WHERE mime_digest IS NOT NULL"))
        .scalar_one()
    ):
        raise RuntimeError("large messages still in the queue cannot be moved back; wait")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_column("blobs_held")
        batch_op.drop_column("mime_digest")
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_constraint("fk_attachments_blob_digest_blobs", type_="foreignkey")
        batch_op.drop_index("ix_attachments_blob")
        batch_op.add_column(sa.Column("content", sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, blob_digest FROM attachments")).all()
    for attachment_id, digest in rows:
        location = bind.execute(
            sa.text("SELECT location FROM blobs WHERE digest = :d"), {"d": digest}
        ).scalar_one()
        if location is None:
            raise RuntimeError("attachments kept in GRAPHPOST_BLOB_DIR cannot be moved back")
        parts = bind.execute(
            sa.text("SELECT data FROM blob_chunks WHERE location = :l ORDER BY n"), {"l": location}
        ).all()
        bind.execute(
            sa.text("UPDATE attachments SET content = :c WHERE id = :id"),
            {"c": b"".join(bytes(p[0]) for p in parts), "id": attachment_id},
        )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.alter_column("content", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column("blob_digest")
    with op.batch_alter_table("upload_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_upload_sessions_expiry")
    op.drop_table("upload_sessions")
    op.drop_table("blob_chunks")
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.drop_index("ix_blobs_unreferenced")
    op.drop_table("blobs")
