"""chat_archive_cursor: how far each chat archive (会话存档) was pulled into chat_record (its last seq).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22

Written by hand (types are frozen here, not imported from store.tables).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "chat_archive_cursor",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_chat_archive_cursor"),
    )


def downgrade() -> None:
    op.drop_table("chat_archive_cursor")
