"""ticket_request: the chat message (platform and MsgId) that created or changed a ticket, recorded
in the change's transaction, so a message processed a second time finds its ticket instead of
creating another (or commenting twice).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

Written by hand (types are frozen here, not imported from store.tables).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ticket_request",
        sa.Column("request_key", sa.String(), nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("command", sa.String(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("request_key", name="pk_ticket_request"),
    )


def downgrade() -> None:
    op.drop_table("ticket_request")
