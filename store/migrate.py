"""Schema migrations (Alembic, scripts in store/migrations): apply head, read the current revision.

No alembic.ini is needed: the Alembic config is built here and the connection is passed to
store/migrations/env.py. Upgrading is idempotent (at head it does nothing) and safe to run from
several processes at once on PostgreSQL (a transaction-scoped advisory lock serialises them).
The whole upgrade runs in one transaction on both dialects (DDL is transactional on PostgreSQL
and, with the store's explicit BEGIN, on SQLite).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection

from store.db import Database
from store.errors import MigrationError

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x7469636B6574  # "ticket": pg_advisory_xact_lock key of the migrator


def alembic_config(schema: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.attributes["schema"] = schema
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise MigrationError("no migration scripts found")
    return head


def _upgrade(conn: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def _current(conn: Connection, schema: str | None) -> str | None:
    opts: dict[str, Any] = {"version_table_schema": schema} if schema else {}
    return MigrationContext.configure(conn, opts=opts).get_current_revision()


async def upgrade_async(url: str, schema: str | None = None, revision: str = "head") -> None:
    """Bring the database (PostgreSQL: `schema`, created if missing) to `revision` (default head)."""
    db = Database(url, schema=schema)
    try:
        async with db.write() as conn:
            if db.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
                if db.schema is not None:
                    await conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"')
            await conn.run_sync(_upgrade, alembic_config(db.schema), revision)
    except CommandError as exc:
        raise MigrationError(f"migration failed: {exc}") from exc
    finally:
        await db.dispose()


async def current_revision_async(url: str, schema: str | None = None) -> str | None:
    """The applied revision, or None for an empty database."""
    db = Database(url, schema=schema)
    try:
        async with db.read() as conn:
            return await conn.run_sync(_current, db.schema)
    finally:
        await db.dispose()


def _run_sync(what: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise MigrationError(f"{what}() cannot run inside an event loop; await {what}_async() instead")


def upgrade(url: str, schema: str | None = None, revision: str = "head") -> None:
    """Synchronous `upgrade_async` (for the CLI)."""
    _run_sync("upgrade")
    asyncio.run(upgrade_async(url, schema, revision))


def current_revision(url: str, schema: str | None = None) -> str | None:
    _run_sync("current_revision")
    return asyncio.run(current_revision_async(url, schema))
