"""SqlInbox on SQLite and PostgreSQL: dedupe, claim / done / failed / dead, lease recovery, and
concurrent claimers that never share a row."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from store.db import Database
from store.errors import StoreError
from store.inbox import SqlInbox
from tests.fakes import FakeClock


async def _fill(inbox: SqlInbox, clock: FakeClock, n: int, platform: str = "wecom") -> list[str]:
    keys = []
    for i in range(n):
        key = f"msg:{1000 + i}"
        assert await inbox.add(platform, key, f"<xml>{i}</xml>", clock.now())
        clock.advance(seconds=1)
        keys.append(key)
    return keys


async def test_add_stores_once_per_platform_and_key(db: Database) -> None:
    clock = FakeClock()
    inbox = SqlInbox(db)
    assert await inbox.add("wecom", "msg:1", "<xml>a</xml>", clock.now()) is True
    assert await inbox.add("wecom", "msg:1", "<xml>other</xml>", clock.now()) is False
    assert await inbox.add("dingtalk", "msg:1", "{}", clock.now()) is True
    assert await inbox.statuses() == [("msg:1", "pending", 0), ("msg:1", "pending", 0)]
    (item,) = await inbox.claim(10, clock.now(), platform="wecom")
    assert item.payload == "<xml>a</xml>" and item.platform == "wecom"


async def test_add_refuses_naive_times_and_empty_keys(db: Database) -> None:
    inbox = SqlInbox(db)
    with pytest.raises(StoreError, match="timezone-aware"):
        await inbox.add("wecom", "msg:1", "", FakeClock().now().replace(tzinfo=None))
    with pytest.raises(StoreError, match="must not be empty"):
        await inbox.add("wecom", "", "", FakeClock().now())


async def test_claim_hands_out_pending_rows_oldest_first_once(db: Database) -> None:
    clock = FakeClock()
    inbox = SqlInbox(db)
    keys = await _fill(inbox, clock, 5)
    first = await inbox.claim(3, clock.now())
    assert [i.dedupe_key for i in first] == keys[:3]
    second = await inbox.claim(10, clock.now())
    assert [i.dedupe_key for i in second] == keys[3:]
    assert await inbox.claim(10, clock.now()) == []
    assert {s for _, s, _ in await inbox.statuses()} == {"processing"}


async def test_claim_key_takes_one_pending_row(db: Database) -> None:
    clock = FakeClock()
    inbox = SqlInbox(db)
    await _fill(inbox, clock, 2)
    item = await inbox.claim_key("wecom", "msg:1001", clock.now())
    assert item is not None and item.payload == "<xml>1</xml>"
    assert await inbox.claim_key("wecom", "msg:1001", clock.now()) is None
    assert await inbox.claim_key("wecom", "msg:missing", clock.now()) is None
    assert [i.dedupe_key for i in await inbox.claim(10, clock.now())] == ["msg:1000"]


async def test_done_and_failed_then_dead_after_five_attempts(db: Database) -> None:
    clock = FakeClock()
    inbox = SqlInbox(db)
    await _fill(inbox, clock, 2)
    a, b = await inbox.claim(10, clock.now())
    assert await inbox.done(a.id, clock.now()) is True
    assert await inbox.done(a.id, clock.now()) is False

    for attempt in range(1, 5):
        retry_at = clock.now() + timedelta(seconds=30)
        assert await inbox.failed(b.id, f"boom {attempt}", clock.now(), retry_at) == "pending"
        assert await inbox.claim(10, clock.now()) == [], "not due before retry_at"
        clock.advance(seconds=30)
        (again,) = await inbox.claim(10, clock.now())
        assert again.id == b.id and again.attempts == attempt
    assert await inbox.failed(b.id, "boom 5", clock.now(), clock.now()) == "dead"
    assert await inbox.claim(10, clock.now() + timedelta(days=1)) == []
    assert await inbox.statuses() == [("msg:1000", "done", 0), ("msg:1001", "dead", 5)]
    assert await inbox.failed(b.id, "late", clock.now(), clock.now()) is None


async def test_recover_returns_rows_whose_lease_expired(db: Database) -> None:
    clock = FakeClock()
    inbox = SqlInbox(db)
    await _fill(inbox, clock, 3)
    old = await inbox.claim(2, clock.now())
    clock.advance(seconds=200)
    fresh = await inbox.claim(1, clock.now())
    assert [i.dedupe_key for i in old] == ["msg:1000", "msg:1001"] and len(fresh) == 1
    clock.advance(seconds=150)  # old claims are 350 s old, the fresh one 150 s
    assert await inbox.recover(clock.now(), lease_seconds=300) == 2
    assert await inbox.recover(clock.now(), lease_seconds=300) == 0
    again = await inbox.claim(10, clock.now())
    assert [i.dedupe_key for i in again] == ["msg:1000", "msg:1001"]
    assert await inbox.recover(clock.now(), lease_seconds=300, platform="dingtalk") == 0


async def test_claim_and_recover_filter_by_platform(db: Database) -> None:
    clock = FakeClock()
    inbox = SqlInbox(db)
    await _fill(inbox, clock, 2, platform="wecom")
    await _fill(inbox, clock, 1, platform="dingtalk")
    got = await inbox.claim(10, clock.now(), platform="dingtalk")
    assert [i.platform for i in got] == ["dingtalk"]
    assert len(await inbox.claim(10, clock.now(), platform="wecom")) == 2


async def test_concurrent_claimers_never_get_the_same_row(database_url: str) -> None:
    """Eight claimers over four engines (four pools, like four worker processes): FOR UPDATE SKIP
    LOCKED on PostgreSQL, the single write lock on SQLite."""
    clock = FakeClock()
    databases = [Database(database_url) for _ in range(4)]
    try:
        await _fill(SqlInbox(databases[0]), clock, 60)
        inboxes = [SqlInbox(d) for d in databases]

        async def worker(inbox: SqlInbox) -> list[int]:
            got: list[int] = []
            while batch := await inbox.claim(3, clock.now()):
                got.extend(i.id for i in batch)
            return got

        results = await asyncio.gather(*(worker(i) for i in inboxes * 2))
        claimed = [i for r in results for i in r]
        assert len(claimed) == len(set(claimed)) == 60
    finally:
        for d in databases:
            await d.dispose()
