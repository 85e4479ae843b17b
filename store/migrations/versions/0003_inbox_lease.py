"""inbox: claim lease, retry time and last error, for processing rows from the inbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-05-20

Written by hand (types are frozen here, not imported from store.tables). A claimed row is
`processing` with `claimed_at` set; a row whose claim is older than the lease goes back to
`pending` (a crash mid-processing loses nothing). A failed row waits until `next_attempt_at`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("inbox", sa.Column("claimed_at", TS, nullable=True))
    op.add_column("inbox", sa.Column("next_attempt_at", TS, nullable=True))
    op.add_column("inbox", sa.Column("last_error", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("inbox", "last_error")
    op.drop_column("inbox", "next_attempt_at")
    op.drop_column("inbox", "claimed_at")
