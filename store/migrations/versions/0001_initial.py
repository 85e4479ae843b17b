"""initial schema: tickets, flow logs, ticket users, SN counters, inbox/outbox, workflow versions,
directory.

Revision ID: 0001
Revises:
Create Date: 2025-11-21

Written by hand (types are frozen here, not imported from store.tables). Dialect-aware:
ids are BIGINT identity on PostgreSQL and INTEGER PRIMARY KEY AUTOINCREMENT on SQLite; JSON is
JSONB on PostgreSQL; the SN prefix-search index (varchar_pattern_ops) exists on PostgreSQL only.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
TS = sa.DateTime(timezone=True)
STR = sa.String()


def upgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"

    op.create_table(
        "ticket",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("sn", STR, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("workflow_version", STR, nullable=False),
        sa.Column("state_id", sa.Integer(), nullable=False),
        sa.Column("act_state", sa.Integer(), nullable=False),
        sa.Column("creator", STR, nullable=False),
        sa.Column("participant_type", sa.Integer(), nullable=False),
        sa.Column("participants", JSON, nullable=False),
        sa.Column("accepted_by", STR, nullable=False),
        sa.Column("in_add_node", sa.Boolean(), nullable=False),
        sa.Column("add_node_man", STR, nullable=False),
        sa.Column("add_node_target", STR, nullable=False),
        sa.Column("votes", JSON, nullable=False),
        sa.Column("relation", JSON, nullable=False),
        sa.Column("cc", JSON, nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("parent_ticket_id", ID, nullable=False),
        sa.Column("parent_ticket_state_id", sa.Integer(), nullable=False),
        sa.Column("script_run_last_result", sa.Boolean(), nullable=False),
        sa.Column("state_entered_at", TS, nullable=True),
        sa.Column("last_handlers", JSON, nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ticket"),
        sa.UniqueConstraint("sn", name="uq_ticket_sn"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_ticket_workflow_id_created_at", "ticket", ["workflow_id", "created_at"])
    op.create_index("ix_ticket_state_id", "ticket", ["state_id"])
    op.create_index("ix_ticket_creator_created_at", "ticket", ["creator", "created_at"])
    op.create_index("ix_ticket_parent", "ticket", ["parent_ticket_id", "parent_ticket_state_id"])
    op.create_index("ix_ticket_act_state_created_at", "ticket", ["act_state", "created_at"])
    op.create_index("ix_ticket_created_at", "ticket", ["created_at"])
    if is_pg:  # the unique index on sn can't serve LIKE 'prefix%' under a non-C collation
        op.create_index(
            "ix_ticket_sn_pattern", "ticket", ["sn"], postgresql_ops={"sn": "varchar_pattern_ops"}
        )

    op.create_table(
        "ticket_user",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("username", STR, nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("worked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "username", name="pk_ticket_user"),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], name="fk_ticket_user_ticket_id_ticket"),
    )
    op.create_index(
        "ix_ticket_user_username_is_current_ticket_id", "ticket_user", ["username", "is_current", "ticket_id"]
    )
    op.create_index(
        "ix_ticket_user_username_worked_ticket_id", "ticket_user", ["username", "worked", "ticket_id"]
    )

    op.create_table(
        "flow_log",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("state_id", sa.Integer(), nullable=False),
        sa.Column("actor", STR, nullable=False),
        sa.Column("actor_type", sa.Integer(), nullable=False),
        sa.Column("intervene_type", sa.Integer(), nullable=False),
        sa.Column("transition_id", sa.Integer(), nullable=False),
        sa.Column("transition_name", STR, nullable=False),
        sa.Column("attribute", sa.Integer(), nullable=False),
        sa.Column("suggestion", sa.Text(), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow_log"),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], name="fk_flow_log_ticket_id_ticket"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_flow_log_ticket_id_id", "flow_log", ["ticket_id", "id"])

    op.create_table(
        "sn_counter",
        sa.Column("prefix", STR, nullable=False),
        sa.Column("day", STR, nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "day", name="pk_sn_counter"),
    )

    op.create_table(
        "outbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", ID, nullable=True),
        sa.Column("event", STR, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("status", STR, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("dedupe_key", STR, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])

    op.create_table(
        "inbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("platform", STR, nullable=False),
        sa.Column("dedupe_key", STR, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", STR, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_inbox_platform_dedupe_key", "inbox", ["platform", "dedupe_key"], unique=True)
    op.create_index("ix_inbox_status_received_at", "inbox", ["status", "received_at"])

    op.create_table(
        "workflow_version",
        sa.Column("workflow_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", STR, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("loaded_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "version", name="pk_workflow_version"),
    )

    op.create_table(
        "org_user",
        sa.Column("username", STR, nullable=False),
        sa.Column("alias", STR, nullable=False),
        sa.Column("email", STR, nullable=False),
        sa.Column("phone", STR, nullable=False),
        sa.Column("dept_ids", JSON, nullable=False),
        sa.Column("type", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("wecom_userid", STR, nullable=False),
        sa.Column("dingtalk_staff_id", STR, nullable=False),
        sa.Column("avatar", sa.Text(), nullable=False),
        sa.Column("source", STR, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_org_user"),
    )
    op.create_table(
        "org_department",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", STR, nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=False),
        sa.Column("leader", STR, nullable=False),
        sa.Column("approvers", JSON, nullable=False),
        sa.Column("source", STR, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_org_department"),
    )
    op.create_table(
        "org_role",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", STR, nullable=False),
        sa.Column("members", JSON, nullable=False),
        sa.Column("source", STR, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_org_role"),
    )


def downgrade() -> None:
    for table in (
        "org_role",
        "org_department",
        "org_user",
        "workflow_version",
        "inbox",
        "outbox",
        "sn_counter",
        "flow_log",
        "ticket_user",
        "ticket",
    ):
        op.drop_table(table)
