"""Migrations: idempotent upgrade, revision reporting, schema == table models, both dialects."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from store.db import Database
from store.errors import MigrationError
from store.migrate import current_revision, current_revision_async, head_revision, upgrade, upgrade_async
from store.tables import include_object_for, metadata

TABLES = {
    "ticket",
    "ticket_user",
    "flow_log",
    "outbox",
    "inbox",
    "sn_counter",
    "workflow_version",
    "org_user",
    "org_department",
    "org_role",
}


async def test_upgrade_is_idempotent(database_url: str) -> None:
    assert await current_revision_async(database_url) == head_revision()
    await upgrade_async(database_url)
    await upgrade_async(database_url)
    assert await current_revision_async(database_url) == head_revision()


def _diff(conn: Connection) -> list[object]:
    opts = {"compare_type": True, "include_object": include_object_for(conn.dialect.name)}
    ctx = MigrationContext.configure(conn, opts=opts)
    return list(compare_metadata(ctx, metadata))


def _tables_and_indexes(conn: Connection) -> tuple[set[str], set[str]]:
    insp = inspect(conn)
    tables = set(insp.get_table_names())
    indexes = {ix["name"] or "" for t in tables for ix in insp.get_indexes(t)}
    return tables, indexes


async def test_migrated_schema_matches_the_table_models(db: Database) -> None:
    async with db.read() as conn:
        assert await conn.run_sync(_diff) == []
        tables, indexes = await conn.run_sync(_tables_and_indexes)
    assert tables >= TABLES
    assert {
        "ix_ticket_workflow_id_created_at",
        "ix_ticket_state_id",
        "ix_ticket_creator_created_at",
        "ix_ticket_parent",
        "ix_ticket_act_state_created_at",
        "ix_ticket_created_at",
        "ix_ticket_user_username_is_current_ticket_id",
        "ix_ticket_user_username_worked_ticket_id",
        "ix_flow_log_ticket_id_id",
        "ix_outbox_status_next_attempt_at",
        "uq_inbox_platform_dedupe_key",
    } <= indexes
    assert ("ix_ticket_sn_pattern" in indexes) == (db.dialect == "postgresql")


def test_sync_api_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'tb.db'}"
    assert current_revision(url) is None
    upgrade(url)
    upgrade(url)
    assert current_revision(url) == head_revision() == "0008"


async def test_sync_api_refuses_to_run_inside_an_event_loop(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="upgrade_async"):
        upgrade(f"sqlite:///{tmp_path / 'tb.db'}")
