"""Shared database fixtures for every test package.

- `database_url`: the URL of a freshly migrated, empty database, once per backend:
  "sqlite" (a file in tmp_path) and "postgres" (marked `postgres`; the server from
  TICKETBOT_TEST_PG_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/test, isolated in a
  fresh schema t_<uuid> that the URL names with ``?schema=``, dropped afterwards). If PostgreSQL is
  unreachable the postgres tests FAIL (CI guarantees the server); they never skip.
- `db`: a `store.db.Database` on that URL, disposed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from store.db import Database
from store.migrate import upgrade_async

PG_URL = os.environ.get("TICKETBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")

_pg_failure: list[str] = []  # the first connection failure, so later tests fail at once


def pg_schema_url(schema: str, base: str = PG_URL) -> str:
    return make_url(base).update_query_dict({"schema": schema}).render_as_string(hide_password=False)


async def _drop_schema(schema: str) -> None:
    engine = create_async_engine(PG_URL, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def fresh_database_url(kind: str, directory: Path) -> AsyncIterator[str]:
    """A freshly migrated, empty database of `kind` ("sqlite": a file in `directory`; "postgres":
    a new schema, dropped afterwards). Fails (never skips) when PostgreSQL is unusable."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / 'ticketbot.db'}"
        await upgrade_async(url)
        yield url
        return
    if _pg_failure:
        pytest.fail(_pg_failure[0], pytrace=False)
    schema = f"t_{uuid.uuid4().hex}"
    url = pg_schema_url(schema)
    try:
        await upgrade_async(url)
    except Exception as exc:
        await _drop_schema_quietly(schema)
        _pg_failure.append(
            f"PostgreSQL test database unusable at {make_url(PG_URL).render_as_string()} "
            f"({type(exc).__name__}: {exc}); set TICKETBOT_TEST_PG_URL or start the server"
        )
        pytest.fail(_pg_failure[0], pytrace=False)
    try:
        yield url
    finally:
        await _drop_schema(schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database_url(request.param, tmp_path) as url:
        yield url


async def _drop_schema_quietly(schema: str) -> None:
    with contextlib.suppress(Exception):  # the server is unusable; the caller reports that
        await _drop_schema(schema)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()
