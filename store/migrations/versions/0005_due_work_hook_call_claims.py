"""due_work (timer transitions, reminders, urges and escalations due at a time), hook_call (every
hook POST and its callback), and claim columns on delivery (several workers, FOR UPDATE SKIP LOCKED).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

Written by hand (types are frozen here, not imported from store.tables).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
STR = sa.String()
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "due_work",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("state_id", sa.Integer(), nullable=False),
        sa.Column("state_entered_at", TS, nullable=False),
        sa.Column("kind", STR, nullable=False),
        sa.Column("transition_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", STR, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("status", STR, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("claimed_by", STR, nullable=False),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_due_work"),
        sa.UniqueConstraint("dedupe_key", name="uq_due_work_dedupe_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_due_work_status_due_at", "due_work", ["status", "due_at"])
    op.create_index("ix_due_work_ticket_id", "due_work", ["ticket_id"])
    op.create_table(
        "hook_call",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("state_id", sa.Integer(), nullable=False),
        sa.Column("ticket_version", sa.Integer(), nullable=False),
        sa.Column("call_id", STR, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("wait", sa.Boolean(), nullable=False),
        sa.Column("dedupe_key", STR, nullable=False),
        sa.Column("status", STR, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("claimed_by", STR, nullable=False),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("called_at", TS, nullable=True),
        sa.Column("answered_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_hook_call"),
        sa.UniqueConstraint("call_id", name="uq_hook_call_call_id"),
        sa.UniqueConstraint("dedupe_key", name="uq_hook_call_dedupe_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hook_call_status_next_attempt_at", "hook_call", ["status", "next_attempt_at"])
    op.create_index("ix_hook_call_ticket_id", "hook_call", ["ticket_id"])
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("claimed_by", STR, nullable=False, server_default=""))
        batch.add_column(sa.Column("claimed_until", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
    op.drop_index("ix_hook_call_ticket_id", table_name="hook_call")
    op.drop_index("ix_hook_call_status_next_attempt_at", table_name="hook_call")
    op.drop_table("hook_call")
    op.drop_index("ix_due_work_ticket_id", table_name="due_work")
    op.drop_index("ix_due_work_status_due_at", table_name="due_work")
    op.drop_table("due_work")
