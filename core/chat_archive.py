"""The chat archive (会话存档) as the work-order side sees it: pages of messages in archive order
(`seq`), behind an interface so nothing needs Tencent's native SDK to build or test. The WeCom
implementation reads a getchatdata-like HTTP source (bot/wecom/archive.py); the cursor that
remembers how far the pull got is store/archive_cursors.py."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, Protocol

from core.workorder import ChatRecord


class ArchivePage(NamedTuple):
    """Records after some seq, in archive order, and the seq to ask after next time (the last
    message's seq, or the seq asked after when there was nothing new)."""

    records: tuple[ChatRecord, ...]
    next_seq: int


class ChatArchive(Protocol):
    async def fetch(self, after_seq: int, limit: int) -> ArchivePage:
        """At most `limit` messages with a seq above `after_seq`. Raises on a failed fetch."""
        ...


class ArchiveCursors(Protocol):
    async def seq(self, name: str) -> int:
        """How far the archive `name` was pulled (0: never)."""
        ...

    async def advance(self, name: str, seq: int, now: datetime) -> int:
        """Remember `seq` for `name` unless a higher one is kept already; the seq kept."""
        ...
