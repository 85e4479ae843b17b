"""The work-order open API: work_order (a ticket's customer link), customer (WeCom external
contacts), chat_record and work_order_message (chat records linked to work orders), webhook_call
(signed work_order_change webhooks), chat_link_session (linking chat records from chat), and
flow_log.extra (pictures, attachments, visibility to the
customer and ratings of a step).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22

Written by hand (types are frozen here, not imported from store.tables).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
STR = sa.String()
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("flow_log") as batch:
        batch.add_column(sa.Column("extra", JSON, nullable=False, server_default=sa.text("'{}'")))
    op.create_table(
        "work_order",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("relation_type", sa.Integer(), nullable=False),
        sa.Column("relation_id", STR, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name="pk_work_order"),
    )
    op.create_index("ix_work_order_relation", "work_order", ["relation_type", "relation_id"])
    op.create_table(
        "customer",
        sa.Column("external_userid", STR, nullable=False),
        sa.Column("name", STR, nullable=False),
        sa.Column("avatar", sa.Text(), nullable=False),
        sa.Column("corp_name", STR, nullable=False),
        sa.Column("type", sa.Integer(), nullable=False),
        sa.Column("gender", sa.Integer(), nullable=False),
        sa.Column("unionid", STR, nullable=False),
        sa.Column("follow_users", JSON, nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("external_userid", name="pk_customer"),
    )
    op.create_table(
        "chat_record",
        sa.Column("id", STR, nullable=False),
        sa.Column("source", STR, nullable=False),
        sa.Column("from_id", STR, nullable=False),
        sa.Column("to_ids", JSON, nullable=False),
        sa.Column("room_id", STR, nullable=False),
        sa.Column("msg_type", STR, nullable=False),
        sa.Column("content", JSON, nullable=False),
        sa.Column("sent_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_record"),
    )
    op.create_index("ix_chat_record_sent_at", "chat_record", ["sent_at"])
    op.create_table(
        "work_order_message",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("msg_id", STR, nullable=False),
        sa.Column("linked_by", STR, nullable=False),
        sa.Column("linked_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "msg_id", name="pk_work_order_message"),
    )
    op.create_table(
        "chat_link_session",
        sa.Column("platform", STR, nullable=False),
        sa.Column("username", STR, nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("platform", "username", name="pk_chat_link_session"),
    )
    op.create_table(
        "webhook_call",
        sa.Column("id", STR, nullable=False),
        sa.Column("app", STR, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("status", STR, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("dedupe_key", STR, nullable=False),
        sa.Column("state", STR, nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("claimed_by", STR, nullable=False),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_call"),
        sa.UniqueConstraint("dedupe_key", name="uq_webhook_call_dedupe_key"),
    )
    op.create_index("ix_webhook_call_state_next_attempt_at", "webhook_call", ["state", "next_attempt_at"])
    op.create_index("ix_webhook_call_ticket_id", "webhook_call", ["ticket_id"])


def downgrade() -> None:
    for table in (
        "webhook_call",
        "chat_link_session",
        "work_order_message",
        "chat_record",
        "customer",
        "work_order",
    ):
        op.drop_table(table)
    with op.batch_alter_table("flow_log") as batch:
        batch.drop_column("extra")
