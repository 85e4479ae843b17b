"""API request nonces (core.ports.NonceStore) in the ``api_nonce`` table, on SQLite and PostgreSQL.

The HMAC scheme of the API (api/auth.py) sends a fresh nonce with every request; a nonce seen
before within the replay window is refused. `add` is ONE atomic statement::

    INSERT INTO api_nonce (app, nonce, expires_at) VALUES (:app, :nonce, :expires_at)
    ON CONFLICT (app, nonce) DO UPDATE SET expires_at = excluded.expires_at
        WHERE api_nonce.expires_at <= :now
    RETURNING nonce

A row comes back when the nonce is new, or when its earlier use has expired (it is then
remembered again); nothing comes back while the nonce is still remembered. The primary key
serialises concurrent requests with the same nonce, across processes too, so exactly one wins.

Expired rows are deleted opportunistically, by the first `add` and then every `PURGE_EVERY` adds
of a store instance (and on demand with `purge`), so the table stays about the size of the traffic
of one window.

`clock` must be the clock the caller computes `expires_at` with (the API's clock): "expired" is
judged against it. Default: the system's UTC time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, delete
from sqlalchemy.sql.selectable import TextualSelect

from core.ports import Clock
from store.db import Database, DialectName, cacheable, upsert
from store.errors import StoreError
from store.tables import api_nonce

PURGE_EVERY = 100


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
    return value


def _add_statement(dialect: DialectName) -> TextualSelect:
    """Remember a nonce unless a live one is there (an expired one is taken over): returns the
    nonce when it was added. Built once per dialect (SQLAlchemy 2.0 would compile an upsert on
    every call)."""
    c = api_nonce.c
    insert = upsert(dialect, api_nonce)
    stmt = insert.on_conflict_do_update(
        index_elements=[c.app, c.nonce],
        set_={"expires_at": insert.excluded.expires_at},
        where=c.expires_at <= bindparam("now", type_=c.expires_at.type),
    ).returning(c.nonce)
    return cacheable(stmt, dialect, ["app", "nonce", "expires_at"]).columns(c.nonce)


_DIALECTS: tuple[DialectName, ...] = ("sqlite", "postgresql")
_ADD = {d: _add_statement(d) for d in _DIALECTS}


class SqlNonceStore:
    """core.ports.NonceStore over the api_nonce table."""

    def __init__(self, db: Database, *, clock: Clock | None = None, purge_every: int = PURGE_EVERY) -> None:
        if purge_every < 1:
            raise StoreError(f"purge_every must be at least 1, got {purge_every}")
        self._db = db
        self._clock = clock
        self._purge_every = purge_every
        self._adds = 0

    def _now(self) -> datetime:
        return _aware("the clock's time", self._clock.now()) if self._clock is not None else datetime.now(UTC)

    async def add(self, app: str, nonce: str, expires_at: datetime) -> bool:
        """True if `nonce` of `app` was not remembered (it is now, until `expires_at`); False if it
        was seen before and has not expired yet."""
        _aware("expires_at", expires_at)
        if not app or not nonce:
            raise StoreError("app and nonce must not be empty")
        now = self._now()
        purge = self._adds % self._purge_every == 0
        self._adds += 1
        params = {"app": app, "nonce": nonce, "expires_at": expires_at, "now": now}
        async with self._db.write() as conn:
            if purge:
                await conn.execute(delete(api_nonce).where(api_nonce.c.expires_at <= now))
            added = (await conn.execute(_ADD[self._db.dialect], params)).first() is not None
        return added

    async def purge(self) -> int:
        """Delete every expired nonce; returns how many."""
        async with self._db.write() as conn:
            result = await conn.execute(delete(api_nonce).where(api_nonce.c.expires_at <= self._now()))
        return int(result.rowcount or 0)
