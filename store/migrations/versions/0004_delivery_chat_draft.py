"""delivery (every chat message sent, its card ref and close state) and chat_draft (step-by-step create).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21

Written by hand (types are frozen here, not imported from store.tables).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
STR = sa.String()
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "delivery",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("platform", STR, nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("recipient", STR, nullable=False),
        sa.Column("address", STR, nullable=False),
        sa.Column("kind", STR, nullable=False),
        sa.Column("actor", STR, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("dedupe_key", STR, nullable=False),
        sa.Column("status", STR, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("task_id", STR, nullable=True),
        sa.Column("msg_id", STR, nullable=False),
        sa.Column("state_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actions", STR, nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("response_code", sa.Text(), nullable=False),
        sa.Column("code_expires_at", TS, nullable=True),
        sa.Column("close_due_at", TS, nullable=True),
        sa.Column("close_note", sa.Text(), nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_delivery"),
        sa.UniqueConstraint("dedupe_key", name="uq_delivery_dedupe_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_delivery_status_due_at", "delivery", ["status", "due_at"])
    op.create_index("ix_delivery_close_due_at", "delivery", ["close_due_at"])
    op.create_index("ix_delivery_ticket_id_id", "delivery", ["ticket_id", "id"])
    op.create_index("ix_delivery_actor_kind_created_at", "delivery", ["actor", "kind", "created_at"])
    op.create_index("uq_delivery_platform_task_id", "delivery", ["platform", "task_id"], unique=True)
    op.create_table(
        "chat_draft",
        sa.Column("platform", STR, nullable=False),
        sa.Column("username", STR, nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("asking", STR, nullable=False),
        sa.Column("lang", STR, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("platform", "username", name="pk_chat_draft"),
    )
    op.create_index("ix_chat_draft_expires_at", "chat_draft", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_chat_draft_expires_at", table_name="chat_draft")
    op.drop_table("chat_draft")
    for name in (
        "uq_delivery_platform_task_id",
        "ix_delivery_actor_kind_created_at",
        "ix_delivery_ticket_id_id",
        "ix_delivery_close_due_at",
        "ix_delivery_status_due_at",
    ):
        op.drop_index(name, table_name="delivery")
    op.drop_table("delivery")
