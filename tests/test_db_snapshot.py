"""The database snapshots (tests/db_snapshot.py) can fail: they see what a refused request must not do."""

from __future__ import annotations

from datetime import UTC, datetime

from store.db import Database
from store.tables import api_nonce, customer
from tests.db_snapshot import EXCLUDED, DatabaseSnapshots, DbWatch, prove_watch


async def test_snapshots_see_every_change_but_in_an_excluded_table(db: Database, database_url: str) -> None:
    """The no-state-change check of the API runs can fail: rows added or changed are seen (the
    change of one value in place too); the nonces of the HMAC scheme are left out on purpose."""
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    person = {"external_userid": "wm-1", "name": "ACME", "follow_users": [], "updated_at": now}
    snapshots = DatabaseSnapshots(database_url, EXCLUDED)
    try:
        empty = await snapshots.take()
        assert empty.diff(await snapshots.take()) == []
        async with db.write() as conn:
            await conn.execute(customer.insert().values(**person))
        added = await snapshots.take()
        assert empty.diff(added) == ["customer: 0 -> 1 rows"]
        async with db.write() as conn:
            await conn.execute(customer.update().values(name="ACME Ltd"))
        renamed = await snapshots.take()
        assert added.diff(renamed) == ["customer: 1 rows, some changed"]
        async with db.write() as conn:
            await conn.execute(api_nonce.insert().values(app="demo", nonce="n-12345678", expires_at=now))
        assert set(EXCLUDED) == {"api_nonce"} and renamed.diff(await snapshots.take()) == []
    finally:
        await snapshots.dispose()


async def test_watch_sees_the_rows_inserted_changed_and_deleted(db: Database, database_url: str) -> None:
    """The fuzz's row-level reports (DbWatch) name the rows that changed, and only in changed tables."""
    watch = await DbWatch.start(database_url)
    try:
        await prove_watch(watch, db)
    finally:
        await watch.dispose()
