"""How far each chat archive (会话存档) has been pulled (table ``chat_archive_cursor``): the last seq
whose messages are kept in ``chat_record``. Implements core.chat_archive.ArchiveCursors on SQLite
and PostgreSQL. `advance` never moves a cursor back, so two pulls racing (two workers, or the job
and a sidebar refresh) leave the higher seq; the records themselves are kept once by their msgid.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from store.db import Database, upsert
from store.errors import StoreError
from store.tables import chat_archive_cursor

MAX_NAME = 128


class SqlArchiveCursors:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def seq(self, name: str) -> int:
        """The seq kept for archive `name` (0 when it was never pulled)."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(chat_archive_cursor.c.seq).where(chat_archive_cursor.c.name == name)
                )
            ).first()
        return 0 if row is None else int(row[0])

    async def advance(self, name: str, seq: int, now: datetime) -> int:
        """Keep `seq` for `name` unless a higher seq is kept already; returns the seq kept."""
        if not name or len(name) > MAX_NAME:
            raise StoreError(f"an archive cursor needs a name of 1 to {MAX_NAME} characters")
        if seq < 0:
            raise StoreError("an archive seq is never negative")
        if now.tzinfo is None or now.utcoffset() is None:
            raise StoreError("now must be a timezone-aware datetime")
        c = chat_archive_cursor.c
        insert = upsert(self._db.dialect, chat_archive_cursor).values(name=name, seq=seq, updated_at=now)
        stmt = insert.on_conflict_do_update(
            index_elements=[c.name],
            set_={"seq": insert.excluded.seq, "updated_at": insert.excluded.updated_at},
            where=c.seq < insert.excluded.seq,
        )
        async with self._db.write() as conn:
            await conn.execute(stmt)
            row = (await conn.execute(select(c.seq).where(c.name == name))).first()
        return seq if row is None else int(row[0])


if TYPE_CHECKING:
    from core.chat_archive import ArchiveCursors

    def _conforms(s: SqlArchiveCursors) -> ArchiveCursors:
        return s
