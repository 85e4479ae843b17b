"""Contract tests of the linking sessions (store.chat_links) and the chat archive cursors
(store.archive_cursors) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.chat_links import ChatLinkSession
from store.archive_cursors import SqlArchiveCursors
from store.chat_links import SqlChatLinks
from store.db import Database
from store.errors import StoreError

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=30)


async def test_a_session_starts_extends_and_ends(db: Database) -> None:
    links = SqlChatLinks(db)
    assert await links.current("wecom", "xuli") is None
    await links.start("wecom", "xuli", 7, NOW + TTL, NOW)
    assert await links.current("wecom", "xuli") == ChatLinkSession("wecom", "xuli", 7, NOW + TTL, NOW)
    assert await links.current("dingtalk", "xuli") is None  # one per platform
    later = NOW + timedelta(minutes=10)
    await links.extend("wecom", "xuli", later + TTL, later)
    assert (await links.current("wecom", "xuli")).expires_at == later + TTL  # type: ignore[union-attr]
    await links.extend("wecom", "xuli", NOW, later)  # never back
    assert (await links.current("wecom", "xuli")).expires_at == later + TTL  # type: ignore[union-attr]
    await links.start("wecom", "xuli", 8, later + TTL, later)  # another order replaces it
    assert (await links.current("wecom", "xuli")).ticket_id == 8  # type: ignore[union-attr]
    assert await links.end("wecom", "xuli") is True
    assert await links.end("wecom", "xuli") is False
    assert await links.current("wecom", "xuli") is None
    await links.extend("wecom", "xuli", later + TTL, later)  # nothing to extend: nothing happens
    assert await links.current("wecom", "xuli") is None


async def test_expired_sessions_are_kept_until_read_and_purged_by_a_start(db: Database) -> None:
    links = SqlChatLinks(db)
    await links.start("wecom", "heping", 3, NOW + TTL, NOW)
    late = NOW + TTL + timedelta(seconds=1)
    got = await links.current("wecom", "heping")
    assert got is not None and not got.live(late) and got.live(NOW)
    await links.start("wecom", "xuli", 4, late + TTL, late)  # purges what expired by then
    assert await links.current("wecom", "heping") is None
    assert await links.current("wecom", "xuli") is not None


async def test_bad_sessions_are_refused(db: Database) -> None:
    links = SqlChatLinks(db)
    with pytest.raises(StoreError):
        await links.start("", "xuli", 1, NOW + TTL, NOW)
    with pytest.raises(StoreError):
        await links.start("wecom", "xuli", 0, NOW + TTL, NOW)
    with pytest.raises(StoreError):
        await links.start("wecom", "xuli", 1, datetime(2026, 11, 22), NOW)


async def test_archive_cursors_only_move_forward(db: Database) -> None:
    cursors = SqlArchiveCursors(db)
    assert await cursors.seq("wecom") == 0
    assert await cursors.advance("wecom", 5, NOW) == 5
    assert await cursors.advance("wecom", 3, NOW) == 5
    assert await cursors.seq("wecom") == 5
    assert await cursors.advance("wecom", 9, NOW) == 9
    assert await cursors.seq("other") == 0
    with pytest.raises(StoreError):
        await cursors.advance("wecom", -1, NOW)
    with pytest.raises(StoreError):
        await cursors.advance("", 1, NOW)
