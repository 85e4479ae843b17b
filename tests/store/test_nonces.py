"""SqlNonceStore on SQLite and PostgreSQL: first use wins, replays lose, expiry and purging."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from store.db import Database
from store.errors import StoreError
from store.nonces import SqlNonceStore
from store.tables import api_nonce
from tests.fakes import FakeClock

WINDOW = timedelta(seconds=120)


async def _rows(db: Database) -> list[tuple[str, str, datetime]]:
    async with db.read() as conn:
        result = await conn.execute(
            select(api_nonce.c.app, api_nonce.c.nonce, api_nonce.c.expires_at).order_by(
                api_nonce.c.app, api_nonce.c.nonce
            )
        )
        return [(r.app, r.nonce, r.expires_at) for r in result]


async def _count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(api_nonce))).scalar_one())


async def test_a_nonce_is_accepted_once(db: Database) -> None:
    clock = FakeClock()
    store = SqlNonceStore(db, clock=clock)
    expires = clock.now() + WINDOW
    assert await store.add("demo", "nonce-0001", expires) is True
    assert await store.add("demo", "nonce-0001", expires) is False
    assert await store.add("demo", "nonce-0001", expires + timedelta(seconds=5)) is False
    assert await _rows(db) == [("demo", "nonce-0001", expires)]


async def test_nonces_are_per_app(db: Database) -> None:
    clock = FakeClock()
    store = SqlNonceStore(db, clock=clock)
    expires = clock.now() + WINDOW
    assert await store.add("demo", "shared-nonce", expires) is True
    assert await store.add("other", "shared-nonce", expires) is True
    assert await store.add("demo", "another-nonce", expires) is True
    assert await store.add("other", "shared-nonce", expires) is False
    assert await _count(db) == 3


async def test_an_expired_nonce_may_be_used_again(db: Database) -> None:
    clock = FakeClock()
    store = SqlNonceStore(db, clock=clock)
    first = clock.now() + WINDOW
    assert await store.add("demo", "nonce-0001", first) is True
    clock.advance(seconds=119)
    assert await store.add("demo", "nonce-0001", clock.now() + WINDOW) is False
    clock.advance(seconds=1)  # now == the first expiry
    later = clock.now() + WINDOW
    assert await store.add("demo", "nonce-0001", later) is True
    assert await _rows(db) == [("demo", "nonce-0001", later)]  # remembered again until the new expiry
    assert await store.add("demo", "nonce-0001", later) is False


async def test_expired_rows_are_purged_every_n_adds(db: Database) -> None:
    clock = FakeClock()
    store = SqlNonceStore(db, clock=clock, purge_every=3)
    for i in range(3):  # the first add purges (nothing yet); these three stay
        assert await store.add("demo", f"old-nonce-{i}", clock.now() + WINDOW)
    clock.advance(seconds=121)
    assert await _count(db) == 3
    assert await store.add("demo", "new-nonce-0", clock.now() + WINDOW)  # 4th add: purges the three
    assert [r[1] for r in await _rows(db)] == ["new-nonce-0"]
    assert await store.add("demo", "new-nonce-1", clock.now() + WINDOW)
    assert await _count(db) == 2


async def test_purge_on_demand(db: Database) -> None:
    clock = FakeClock()
    store = SqlNonceStore(db, clock=clock)
    await store.add("demo", "nonce-aaaa", clock.now() + timedelta(seconds=10))
    await store.add("demo", "nonce-bbbb", clock.now() + timedelta(seconds=100))
    clock.advance(seconds=50)
    assert await store.purge() == 1
    assert [r[1] for r in await _rows(db)] == ["nonce-bbbb"]
    assert await store.purge() == 0


async def test_concurrent_adds_of_one_nonce_have_one_winner(db: Database) -> None:
    clock = FakeClock()
    stores = [SqlNonceStore(db, clock=clock) for _ in range(5)]
    expires = clock.now() + WINDOW
    results = await asyncio.gather(*(s.add("demo", "race-nonce", expires) for s in stores))
    assert sorted(results) == [False, False, False, False, True]


async def test_bad_arguments_are_refused_and_store_nothing(db: Database) -> None:
    clock = FakeClock()
    store = SqlNonceStore(db, clock=clock)
    with pytest.raises(StoreError, match="timezone-aware"):
        await store.add("demo", "nonce-0001", datetime(2026, 1, 1, 12, 0))  # naive: refused
    with pytest.raises(StoreError, match="must not be empty"):
        await store.add("demo", "", clock.now() + WINDOW)
    with pytest.raises(StoreError, match="purge_every"):
        SqlNonceStore(db, purge_every=0)
    assert await _count(db) == 0


async def test_default_clock_is_the_system_time(db: Database) -> None:
    store = SqlNonceStore(db)
    past = datetime.now(tz=FakeClock().now().tzinfo) - timedelta(seconds=1)
    assert await store.add("demo", "nonce-past", past) is True
    assert await store.add("demo", "nonce-past", past + timedelta(hours=1)) is True  # it had expired
    assert await store.add("demo", "nonce-past", past + timedelta(hours=1)) is False
