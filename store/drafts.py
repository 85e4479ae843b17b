"""Chat drafts (table ``chat_draft``): a ticket being filled in step by step, one per (platform, person).

Implements bot.handlers.dialogue.DraftStore structurally (store never imports bot): `put` takes
anything with the attributes of `DraftRecord`, `get` returns a `StoredDraft` with the same ones.

- `put` is ONE upsert on the primary key (platform, username): a new draft replaces the old one.
  The same transaction deletes every draft that had expired by the new draft's `updated_at`, so the
  table stays about the size of the dialogues going on (the index on ``expires_at`` serves it).
- `get` ignores a draft whose `expires_at` is at or before `now`, and deletes it.
- The creator-chosen CC list has no column of its own: it is kept in the ``fields`` JSON under the
  key ``@cc``, which can never be a field key (field keys are identifiers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol

from sqlalchemy import and_, delete, select

from store.db import Database, DialectName, upsert
from store.errors import StoreError
from store.tables import chat_draft

CC_KEY = "@cc"


class DraftRecord(Protocol):
    """What `put` needs of a draft (bot.handlers.dialogue.Draft has exactly these)."""

    @property
    def platform(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def workflow_id(self) -> int: ...
    @property
    def fields(self) -> Mapping[str, Any]: ...
    @property
    def cc(self) -> Sequence[str]: ...
    @property
    def asking(self) -> str: ...
    @property
    def lang(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class StoredDraft:
    platform: str
    username: str
    workflow_id: int
    expires_at: datetime
    updated_at: datetime
    fields: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    cc: tuple[str, ...] = ()
    asking: str = ""
    lang: str = "zh"


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
    return value


def _key(platform: str, username: str) -> Any:
    return and_(chat_draft.c.platform == platform, chat_draft.c.username == username)


def _upsert(dialect: DialectName, values: Mapping[str, Any]) -> Any:
    insert = upsert(dialect, chat_draft).values(**values)
    c = chat_draft.c
    return insert.on_conflict_do_update(
        index_elements=[c.platform, c.username],
        set_={k: insert.excluded[k] for k in values if k not in ("platform", "username")},
    )


def _draft(row: Any) -> StoredDraft:
    data = dict(row.fields or {})
    cc = data.pop(CC_KEY, None) or ()
    return StoredDraft(
        platform=row.platform,
        username=row.username,
        workflow_id=int(row.workflow_id),
        fields=MappingProxyType(data),
        cc=tuple(str(u) for u in cc),
        asking=row.asking,
        lang=row.lang,
        expires_at=row.expires_at,
        updated_at=row.updated_at,
    )


class SqlDraftStore:
    """Chat drafts in the database, on SQLite and PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, platform: str, username: str, now: datetime) -> StoredDraft | None:
        """The person's draft on `platform`; None if there is none or it has expired (then it is deleted)."""
        _aware("now", now)
        async with self._db.read() as conn:
            row = (await conn.execute(select(chat_draft).where(_key(platform, username)))).first()
        if row is None:
            return None
        if row.expires_at <= now:
            async with self._db.write() as conn:
                await conn.execute(
                    delete(chat_draft).where(_key(platform, username), chat_draft.c.expires_at <= now)
                )
            return None
        return _draft(row)

    async def put(self, draft: DraftRecord) -> None:
        """Insert or replace the draft of (draft.platform, draft.username)."""
        _aware("expires_at", draft.expires_at)
        _aware("updated_at", draft.updated_at)
        if not draft.platform or not draft.username:
            raise StoreError("platform and username must not be empty")
        if CC_KEY in draft.fields:
            raise StoreError(f"{CC_KEY!r} is not a field key")
        data: dict[str, Any] = dict(draft.fields)
        if draft.cc:
            data[CC_KEY] = list(draft.cc)
        values = {
            "platform": draft.platform,
            "username": draft.username,
            "workflow_id": draft.workflow_id,
            "fields": data,
            "asking": draft.asking,
            "lang": draft.lang,
            "expires_at": draft.expires_at,
            "updated_at": draft.updated_at,
        }
        async with self._db.write() as conn:
            await conn.execute(delete(chat_draft).where(chat_draft.c.expires_at <= draft.updated_at))
            await conn.execute(_upsert(self._db.dialect, values))

    async def delete(self, platform: str, username: str) -> None:
        """Drop the person's draft (nothing happens if there is none)."""
        async with self._db.write() as conn:
            await conn.execute(delete(chat_draft).where(_key(platform, username)))

    async def purge(self, now: datetime) -> int:
        """Delete every draft that has expired by `now`; the number deleted."""
        _aware("now", now)
        async with self._db.write() as conn:
            result = await conn.execute(delete(chat_draft).where(chat_draft.c.expires_at <= now))
            return int(result.rowcount or 0)
