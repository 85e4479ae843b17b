"""Pulling the chat archive (会话存档) into chat records: the "chat-archive" job and the sidebar's
refresh. Platform-neutral: a core.chat_archive.ChatArchive (bot/wecom/archive.py for WeCom), the
cursor that remembers the last seq, and the ChatRecords port.

One pull asks for pages after the remembered seq until one brings nothing new (caught up) or
MAX_PAGES were read (the next run goes on). Each page's records are kept (source "archive"; one
kept already is left as it is) before the cursor moves past them, so a crash in between only means
they are asked for again. Pulls of one process never overlap (a lock); pulls of several processes
may, and then keep each record once and the higher seq.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from core.chat_archive import ArchiveCursors, ChatArchive
from core.ports import Clock
from core.workorder import ChatRecords

log = logging.getLogger("ticketbot.chat_archive")

JOB_NAME = "chat-archive"
PAGE_SIZE = 500  # WeCom's getchatdata answers at most 1000 a call
MAX_PAGES = 20


@dataclass(frozen=True, slots=True)
class PullReport:
    fetched: int  # messages read from the archive
    added: int  # new chat records
    seq: int  # the cursor afterwards


class ArchiveSync:
    def __init__(
        self,
        archive: ChatArchive,
        cursors: ArchiveCursors,
        records: ChatRecords,
        clock: Clock,
        *,
        name: str = "wecom",
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
    ) -> None:
        if page_size < 1 or max_pages < 1:
            raise ValueError("page_size and max_pages must be positive")
        self._archive = archive
        self._cursors = cursors
        self._records = records
        self._clock = clock
        self.name = name
        self._page_size = page_size
        self._max_pages = max_pages
        self._lock = asyncio.Lock()

    async def pull(self) -> PullReport:
        """Keep what the archive has after the cursor; raises what the archive or the store raise
        (the cursor then stays where the last kept page left it)."""
        async with self._lock:
            seq = first = await self._cursors.seq(self.name)
            fetched = added = 0
            for _ in range(self._max_pages):
                page = await self._archive.fetch(seq, self._page_size)
                now = self._clock.now()
                fetched += len(page.records)
                if page.records:
                    added += await self._records.add(page.records, now)
                if page.next_seq <= seq:  # nothing after the cursor: caught up
                    break
                seq = await self._cursors.advance(self.name, page.next_seq, now)
            if fetched or seq != first:
                log.info(
                    "chat archive pulled",
                    extra={"archive": self.name, "fetched": fetched, "added": added, "seq": seq},
                )
            return PullReport(fetched, added, seq)

    async def run(self) -> None:
        """One scheduled run (bot.scheduler.Jobs logs a failure)."""
        await self.pull()
