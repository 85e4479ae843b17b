"""Alembic environment of the store.

Normally driven by `store.migrate`, which opens the connection itself (so it works with the
async URL, takes the PostgreSQL migration lock and creates the schema) and passes it in
``config.attributes["connection"]``. Also usable from the alembic CLI with an ini file that sets
``sqlalchemy.url`` (sync or async URL), and in offline (--sql) mode.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from store.tables import include_object_for, metadata

config = context.config


def run_with(connection: Connection) -> None:
    schema = config.attributes.get("schema")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=schema,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite can't ALTER most things
        compare_type=True,
        include_object=include_object_for(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url(url: str) -> None:
    from store.db import Database

    db = Database(url, schema=config.attributes.get("schema"))
    try:
        async with db.write() as conn:
            await conn.run_sync(run_with)
    finally:
        await db.dispose()


def _run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        _run_offline()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url configured")
    asyncio.run(_run_from_url(url))


_main()
