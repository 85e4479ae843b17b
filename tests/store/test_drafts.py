"""SqlDraftStore on SQLite and PostgreSQL: one draft per (platform, person), replaced by a new one,
ignored and deleted once expired, expired ones purged; values round-trip through JSON."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import func, select

from bot.handlers.dialogue import DRAFT_TTL, Draft, DraftStore
from store.db import Database
from store.drafts import SqlDraftStore
from store.errors import StoreError
from store.tables import chat_draft
from tests.fakes import FakeClock


def _draft(clock: FakeClock, username: str = "liuyang", platform: str = "wecom", **kw: object) -> Draft:
    now = clock.now()
    values: dict[str, object] = {
        "platform": platform,
        "username": username,
        "workflow_id": 1,
        "expires_at": now + DRAFT_TTL,
        "updated_at": now,
    }
    values.update(kw)
    return Draft(**values)  # type: ignore[arg-type]


async def _count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(chat_draft))).scalar_one())


async def test_a_draft_round_trips(db: Database) -> None:
    clock = FakeClock()
    store: DraftStore = SqlDraftStore(db)  # the bot's protocol, structurally
    draft = _draft(
        clock,
        fields={
            "days": 2,
            "reason": "家里 有事",
            "tags": ["x", "y"],
            "urgent": True,
            "price": 1.5,
            "proxy": None,
        },
        cc=("lina", "zhoumin"),
        asking="start_date",
        lang="en",
    )
    await store.put(draft)
    got = await store.get("wecom", "liuyang", clock.now())
    assert got is not None
    assert Draft.of(got) == draft
    assert dict(got.fields) == dict(draft.fields) and tuple(got.cc) == draft.cc
    assert got.expires_at == draft.expires_at and got.expires_at.tzinfo is not None
    assert await store.get("dingtalk", "liuyang", clock.now()) is None  # per platform
    assert await store.get("wecom", "zhoumin", clock.now()) is None  # per person


async def test_put_replaces_and_delete_drops(db: Database) -> None:
    clock = FakeClock()
    store = SqlDraftStore(db)
    await store.put(_draft(clock, fields={"days": 2}, cc=("lina",)))
    await store.put(_draft(clock, platform="dingtalk"))
    clock.advance(minutes=5)
    newer = _draft(clock, workflow_id=3, fields={"customer_name": "张三"}, asking="category")
    await store.put(newer)
    got = await store.get("wecom", "liuyang", clock.now())
    assert got is not None and Draft.of(got) == newer and tuple(got.cc) == ()
    assert await _count(db) == 2
    await store.delete("wecom", "liuyang")
    await store.delete("wecom", "liuyang")  # nothing there: fine
    assert await store.get("wecom", "liuyang", clock.now()) is None
    assert await store.get("dingtalk", "liuyang", clock.now()) is not None


async def test_an_expired_draft_is_ignored_and_deleted(db: Database) -> None:
    clock = FakeClock()
    store = SqlDraftStore(db)
    draft = _draft(clock)
    await store.put(draft)
    clock.advance(minutes=29, seconds=59)
    assert await store.get("wecom", "liuyang", clock.now()) is not None
    clock.advance(seconds=1)  # now == expires_at
    assert await store.get("wecom", "liuyang", clock.now()) is None
    assert await _count(db) == 0
    # a renewed draft lives on
    await store.put(replace(draft, expires_at=clock.now() + DRAFT_TTL, updated_at=clock.now()))
    assert await store.get("wecom", "liuyang", clock.now()) is not None


async def test_expired_drafts_are_purged_by_put_and_purge(db: Database) -> None:
    clock = FakeClock()
    store = SqlDraftStore(db)
    for name in ("a", "b", "c"):
        await store.put(_draft(clock, username=name))
    clock.advance(minutes=10)
    await store.put(_draft(clock, username="d"))
    assert await _count(db) == 4
    clock.advance(minutes=25)  # a, b, c expired; d not
    await store.put(_draft(clock, username="e"))
    assert await _count(db) == 2
    clock.advance(minutes=60)
    assert await store.purge(clock.now()) == 2
    assert await _count(db) == 0


async def test_bad_input_is_refused(db: Database) -> None:
    clock = FakeClock()
    store = SqlDraftStore(db)
    naive = datetime(2026, 1, 5, 9, 0)
    with pytest.raises(StoreError, match="timezone-aware"):
        await store.put(_draft(clock, expires_at=naive))
    with pytest.raises(StoreError, match="timezone-aware"):
        await store.get("wecom", "liuyang", naive)
    with pytest.raises(StoreError, match="must not be empty"):
        await store.put(_draft(clock, username=""))
    with pytest.raises(StoreError, match="not a field key"):
        await store.put(_draft(clock, fields={"@cc": ["x"]}))
    assert await _count(db) == 0
