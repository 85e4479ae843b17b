"""Linking sessions (table ``chat_link_session``): after `关联 <order_no>` in chat, what the person
sends to the bot is linked to that work order until they say 完成 or `expires_at` passes. One row
per (platform, username); implements core.chat_links.ChatLinks on SQLite and PostgreSQL.

`start` is one upsert on the primary key, in the transaction that also deletes every session that
had expired by then, so the table stays about the size of the sessions going on.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, select, update

from core.chat_links import ChatLinkSession
from store.db import Database, upsert
from store.errors import StoreError
from store.tables import chat_link_session

MAX_NAME = 128


def _aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")


def _key(platform: str, username: str) -> Any:
    c = chat_link_session.c
    return and_(c.platform == platform, c.username == username)


class SqlChatLinks:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(
        self, platform: str, username: str, ticket_id: int, expires_at: datetime, now: datetime
    ) -> None:
        """Open (or replace) the person's session on `platform`, linking to `ticket_id`."""
        _aware("expires_at", expires_at)
        _aware("now", now)
        if not platform or not username or len(platform) > MAX_NAME or len(username) > MAX_NAME:
            raise StoreError(f"platform and username must be 1 to {MAX_NAME} characters")
        if ticket_id < 1:
            raise StoreError("a linking session needs a ticket id")
        values = {
            "platform": platform,
            "username": username,
            "ticket_id": ticket_id,
            "expires_at": expires_at,
            "updated_at": now,
        }
        insert = upsert(self._db.dialect, chat_link_session).values(**values)
        stmt = insert.on_conflict_do_update(
            index_elements=[chat_link_session.c.platform, chat_link_session.c.username],
            set_={k: insert.excluded[k] for k in ("ticket_id", "expires_at", "updated_at")},
        )
        async with self._db.write() as conn:
            await conn.execute(delete(chat_link_session).where(chat_link_session.c.expires_at <= now))
            await conn.execute(stmt)

    async def current(self, platform: str, username: str) -> ChatLinkSession | None:
        """The person's session on `platform`, expired or not; None when there is none."""
        async with self._db.read() as conn:
            row = (await conn.execute(select(chat_link_session).where(_key(platform, username)))).first()
        if row is None:
            return None
        return ChatLinkSession(
            platform=row.platform,
            username=row.username,
            ticket_id=int(row.ticket_id),
            expires_at=row.expires_at,
            updated_at=row.updated_at,
        )

    async def extend(self, platform: str, username: str, expires_at: datetime, now: datetime) -> None:
        """Move the session's expiry forward (never back); nothing when there is none."""
        _aware("expires_at", expires_at)
        _aware("now", now)
        c = chat_link_session.c
        async with self._db.write() as conn:
            await conn.execute(
                update(chat_link_session)
                .where(_key(platform, username), c.expires_at < expires_at)
                .values(expires_at=expires_at, updated_at=now)
            )

    async def end(self, platform: str, username: str) -> bool:
        """Close the person's session; False when there was none."""
        async with self._db.write() as conn:
            result = await conn.execute(delete(chat_link_session).where(_key(platform, username)))
            return bool(result.rowcount)


if TYPE_CHECKING:
    from core.chat_links import ChatLinks

    def _conforms(s: SqlChatLinks) -> ChatLinks:
        return s
