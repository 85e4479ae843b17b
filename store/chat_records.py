"""Chat records kept for work orders (``chat_record``) and their links to work orders
(``work_order_message``: an order's msg_list), on SQLite and PostgreSQL.

A record comes from the chat archive (会话存档, behind bot.chat_archive's interface), from a
message forwarded or quoted to the bot, or from the API. Adding a record again changes nothing;
linking a record twice to one order changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.workorder import ChatRecord
from store.db import Database, upsert
from store.errors import StoreError
from store.tables import chat_record, work_order_message

SOURCES = frozenset({"archive", "chat", "api"})
MAX_ID = 128
SCAN = 1000


def _of(row: Any) -> ChatRecord:
    return ChatRecord(
        id=row["id"],
        source=row["source"],
        sent_at=row["sent_at"],
        from_id=row["from_id"],
        to_ids=tuple(row["to_ids"] or ()),
        room_id=row["room_id"],
        msg_type=row["msg_type"],
        content=dict(row["content"] or {}),
    )


def _check(r: ChatRecord) -> None:
    if not r.id or len(r.id) > MAX_ID:
        raise StoreError(f"a chat record needs an id of 1 to {MAX_ID} characters")
    if r.source not in SOURCES:
        raise StoreError(f"unknown chat record source {r.source!r} (one of {', '.join(sorted(SOURCES))})")


class SqlChatRecords:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, records: Sequence[ChatRecord], now: datetime) -> int:
        """Keep the records (one already kept is left as it is); returns how many were new."""
        for r in records:
            _check(r)
        if not records:
            return 0
        rows = [
            {
                "id": r.id,
                "source": r.source,
                "from_id": r.from_id,
                "to_ids": list(r.to_ids),
                "room_id": r.room_id,
                "msg_type": r.msg_type,
                "content": dict(r.content),
                "sent_at": r.sent_at,
                "created_at": now,
            }
            for r in {r.id: r for r in records}.values()
        ]
        stmt = upsert(self._db.dialect, chat_record).on_conflict_do_nothing(index_elements=[chat_record.c.id])
        async with self._db.write() as conn:
            result = await conn.execute(stmt.returning(chat_record.c.id), rows)
            return len(result.all())

    async def get(self, ids: Sequence[str]) -> list[ChatRecord]:
        """The records of `ids` that are kept, in the order of `ids`."""
        if not ids:
            return []
        async with self._db.read() as conn:
            rows = (
                await conn.execute(select(chat_record).where(chat_record.c.id.in_(sorted(set(ids)))))
            ).mappings()
            found = {r["id"]: _of(r) for r in rows}
        return [found[i] for i in ids if i in found]

    async def between(self, a: str, b: str, *, limit: int = 50) -> list[ChatRecord]:
        """The latest 1:1 records between `a` and `b` (a staff userid and a customer's
        external_userid, either way round), newest first. Looks at the latest SCAN records each
        of them sent (the recipients are a JSON list, filtered here)."""
        c = chat_record.c
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(chat_record)
                    .where(c.room_id == "", c.from_id.in_((a, b)))
                    .order_by(c.sent_at.desc(), c.id)
                    .limit(SCAN)
                )
            ).mappings()
            found = [_of(r) for r in rows]
        other = {a: b, b: a}
        return [r for r in found if other[r.from_id] in r.to_ids][:limit]

    async def link(self, ticket_id: int, msg_ids: Sequence[str], by: str, now: datetime) -> list[str]:
        """Link kept records to a work order; returns the ids newly linked (unknown ids are the
        caller's to refuse first: see `get`)."""
        if not msg_ids:
            return []
        rows = [
            {"ticket_id": ticket_id, "msg_id": m, "linked_by": by, "linked_at": now}
            for m in dict.fromkeys(msg_ids)
        ]
        stmt = upsert(self._db.dialect, work_order_message).on_conflict_do_nothing(
            index_elements=[work_order_message.c.ticket_id, work_order_message.c.msg_id]
        )
        async with self._db.write() as conn:
            result = await conn.execute(stmt.returning(work_order_message.c.msg_id), rows)
            return [r[0] for r in result.all()]

    async def linked(self, ticket_id: int) -> list[str]:
        """The order's msg_list: linked record ids, in the order they were linked."""
        w = work_order_message.c
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(w.msg_id).where(w.ticket_id == ticket_id).order_by(w.linked_at, w.msg_id)
            )
            return [r[0] for r in rows]


if TYPE_CHECKING:
    from core.workorder import ChatRecords

    def _conforms(s: SqlChatRecords) -> ChatRecords:
        return s
