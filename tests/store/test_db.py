"""Database: URL handling, SQLite pragmas and write serialisation, read-only reads, error mapping."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from store.db import Database, parse_url
from store.errors import DatabaseError, IntegrityViolation, StoreError
from store.tables import sn_counter


def test_urls_are_normalised_to_async_drivers() -> None:
    url, schema = parse_url("sqlite:///var/ticketbot.db")
    assert (url.drivername, url.database, schema) == ("sqlite+aiosqlite", "var/ticketbot.db", None)
    url, schema = parse_url("postgresql://u:p@db:5432/tb?schema=tenant_1")
    assert (url.drivername, url.host, schema) == ("postgresql+asyncpg", "db", "tenant_1")
    assert "schema" not in url.query
    assert parse_url("postgres://db/tb", schema="s1")[1] == "s1"


@pytest.mark.parametrize(
    ("url", "schema", "message"),
    [
        ("mysql://db/tb", None, "unsupported"),
        ("sqlite+aiosqlite:///:memory:", None, "in-memory"),
        ("sqlite+aiosqlite://", None, "in-memory"),
        ("sqlite:///x.db", "s1", "only be set for PostgreSQL"),
        ("postgresql://db/tb", "bad-name; drop", "invalid schema"),
        ("postgresql://db/tb?schema=a", "b", "twice"),
        ("not a url", None, "invalid database URL"),
    ],
)
def test_bad_urls_are_refused(url: str, schema: str | None, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        parse_url(url, schema)


@pytest.fixture
async def lite(tmp_path: Path) -> Database:
    return Database(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'dir' / 'tb.db'}")


async def _pragmas(conn: object) -> dict[str, object]:
    out = {}
    for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "query_only"):
        out[name] = (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()  # type: ignore[attr-defined]
    return out


async def test_sqlite_pragmas_and_parent_directory(lite: Database, tmp_path: Path) -> None:
    try:
        assert lite.dialect == "sqlite"
        async with lite.write() as conn:
            assert await _pragmas(conn) == {
                "journal_mode": "wal",
                "synchronous": 1,  # NORMAL
                "foreign_keys": 1,
                "busy_timeout": 5000,
                "query_only": 0,
            }
        async with lite.read() as conn:
            pragmas = await _pragmas(conn)
            assert (pragmas["foreign_keys"], pragmas["busy_timeout"], pragmas["query_only"]) == (1, 5000, 1)
        assert (tmp_path / "nested" / "dir" / "tb.db").exists()
        assert lite.write_engine is not lite.read_engine
        assert lite.write_engine.pool.size() == 1  # type: ignore[attr-defined]
    finally:
        await lite.dispose()


def _try_begin_immediate(path: str) -> str:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return "acquired"
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        other.close()


async def test_sqlite_write_transactions_take_the_write_lock_at_begin(lite: Database) -> None:
    path = lite.write_engine.url.database
    assert path is not None
    try:
        async with lite.write() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        async with lite.write() as conn:
            await conn.execute(text("SELECT 1"))  # only a read so far, but BEGIN IMMEDIATE holds the lock
            assert await asyncio.to_thread(_try_begin_immediate, path) == "database is locked"
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            async with lite.read() as reader:  # WAL: readers don't wait, and see the committed state
                assert (await reader.execute(text("SELECT count(*) FROM t"))).scalar() == 0
        assert await asyncio.to_thread(_try_begin_immediate, path) == "acquired"
        async with lite.read() as reader:
            assert (await reader.execute(text("SELECT count(*) FROM t"))).scalar() == 1
    finally:
        await lite.dispose()


async def test_sqlite_writers_queue_on_the_single_write_connection(lite: Database) -> None:
    order: list[str] = []
    first_in = asyncio.Event()

    async def writer(name: str, work: int) -> None:
        async with lite.write() as conn:
            order.append(f"{name} in")
            first_in.set()
            for _ in range(work):  # real awaits on the driver: the other task gets to run meanwhile
                await conn.execute(text("SELECT 1"))
            order.append(f"{name} out")

    async def second() -> None:
        await first_in.wait()
        await writer("second", 1)

    try:
        await asyncio.gather(writer("first", 20), second())
        assert order == ["first in", "first out", "second in", "second out"]
    finally:
        await lite.dispose()


async def test_reads_are_read_only(db: Database) -> None:
    with pytest.raises(DatabaseError, match=r"(?i)read-?only"):
        async with db.read() as conn:
            await conn.execute(insert(sn_counter).values(prefix="p", day="20240101", value=1))
    async with db.read() as conn:
        assert (await conn.execute(select(sn_counter))).all() == []


async def test_constraint_violations_map_to_integrity_violation(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(insert(sn_counter).values(prefix="p", day="20240101", value=1))
    with pytest.raises(IntegrityViolation):
        async with db.write() as conn:
            await conn.execute(insert(sn_counter).values(prefix="p", day="20240101", value=2))
    with pytest.raises(StoreError):
        async with db.write() as conn:
            await conn.execute(text("SELECT * FROM no_such_table"))
    async with db.read() as conn:
        assert (await conn.execute(select(sn_counter.c.value))).scalars().all() == [1]


async def test_a_connection_used_for_reading_can_write_afterwards(database_url: str) -> None:
    """PostgreSQL shares one pool: the read-only / REPEATABLE READ settings must not stick."""
    one = Database(database_url, pool_size=1, read_pool_size=1)
    try:
        for day in ("20240101", "20240102"):
            async with one.read() as conn:
                await conn.execute(select(sn_counter))
            async with one.write() as conn:
                await conn.execute(insert(sn_counter).values(prefix="p", day=day, value=1))
                isolation = await conn.get_isolation_level()
            assert isolation in ("READ COMMITTED", "SERIALIZABLE")  # SQLite reports SERIALIZABLE
    finally:
        await one.dispose()
