"""Database snapshots, for checks that a refused request changes nothing.

`DatabaseSnapshots(url)` opens its own SQLAlchemy engine (store.db.Database) on the app's database
URL (SQLite or PostgreSQL, ``?schema=`` honoured) and reflects the database's tables once, on the
first `take()`. `await snapshots.take()` returns a `Snapshot`: for every table, its row count and a
digest of all its rows in primary-key order, read in ONE statement inside one read transaction:

- SQLite: each row as its columns' ``quote()`` forms, the rows joined by ``group_concat`` in SQLite
  itself, the text hashed here (sha256);
- PostgreSQL: ``md5(string_agg(row::text ...))`` computed on the server.

No row object is built in Python, so a snapshot of the small databases of tests costs a few
milliseconds. On SQLite it is cheaper still when nothing was committed since the last snapshot:
``PRAGMA data_version`` (on the same connection, read in the same read transaction) changes with
every commit of another connection, so an unchanged value means the previous snapshot holds and
no table is read. `before.diff(after)` lists what differs, per table (empty: unchanged).

Tables left out (EXCLUDED), each because it legitimately changes when a request is refused:

- ``api_nonce``: a request signed with the HMAC scheme has its nonce recorded as soon as it is
  authenticated, before its handler may refuse it; that is the replay protection working (a
  refused request must not be replayable either), so the row is expected on a refusal.

Nothing else is left out: the outbox, the delivery ledger, hook and webhook calls and due work are
all compared (the caller settles the app's background work first, so only the request under test
can move them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from store.db import Database

EXCLUDED: Mapping[str, str] = {
    "api_nonce": "an HMAC-signed request's nonce is kept once authenticated, even if the handler refuses",
}


@dataclass(frozen=True)
class Snapshot:
    """table -> (row count, digest of its rows)."""

    tables: Mapping[str, tuple[int, str]]

    def diff(self, after: Snapshot) -> list[str]:
        """What changed from this snapshot to `after`: one line per table that differs."""
        out = []
        for name in sorted(set(self.tables) | set(after.tables)):
            old, new = self.tables.get(name), after.tables.get(name)
            if old == new:
                continue
            if old is None or new is None:
                out.append(f"{name}: {'created' if old is None else 'dropped'}")
            elif old[0] != new[0]:
                out.append(f"{name}: {old[0]} -> {new[0]} rows")
            else:
                out.append(f"{name}: {new[0]} rows, some changed")
        return out


def _quoted(conn: Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


def _table_query(conn: Connection, name: str, columns: list[str], key: list[str]) -> str:
    """One SELECT of `name`, its count and its rows' digest (SQLite: the rows' text)."""
    table = _quoted(conn, name)
    order = ", ".join(_quoted(conn, c) for c in (key or columns))
    label = "'" + name.replace("'", "''") + "'"
    if conn.dialect.name == "postgresql":
        digest = f"md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), ''))"
        return f"SELECT {label} AS name, count(*) AS n, {digest} AS digest FROM {table} AS t"
    row = " || ',' || ".join(f"quote({_quoted(conn, c)})" for c in columns)
    rows = f"SELECT {row} AS r FROM {table} ORDER BY {order}"
    return f"SELECT {label} AS name, count(*) AS n, coalesce(group_concat(r, char(10)), '') AS digest FROM ({rows})"


def _statement(conn: Connection, excluded: Iterable[str]) -> str:
    """The UNION ALL of every table's query (tables reflected from the database itself)."""
    inspector = inspect(conn)
    skip = set(excluded)
    parts = []
    for name in sorted(inspector.get_table_names()):
        if name in skip:
            continue
        columns = [c["name"] for c in inspector.get_columns(name)]
        key = list(inspector.get_pk_constraint(name).get("constrained_columns") or [])
        parts.append(_table_query(conn, name, columns, key))
    assert parts, "the database has no table to snapshot"
    return "\nUNION ALL\n".join(parts)


class DatabaseSnapshots:
    """Snapshots of the database at `url` (see the module docstring). Use on one event loop;
    `dispose()` when done."""

    def __init__(self, url: str, excluded: Iterable[str] = EXCLUDED) -> None:
        self._db = Database(url, pool_size=1, read_pool_size=1)
        self._excluded = tuple(excluded)
        self._statement: str | None = None
        self._last: tuple[object, int, Snapshot] | None = None  # SQLite: (connection, data_version, snapshot)

    async def take(self) -> Snapshot:
        sqlite = self._db.dialect == "sqlite"
        async with self._db.read() as conn:
            if self._statement is None:
                self._statement = await conn.run_sync(_statement, self._excluded)
            if sqlite:
                await conn.exec_driver_sql("SELECT count(*) FROM sqlite_master")  # the read snapshot starts
                version = int((await conn.exec_driver_sql("PRAGMA data_version")).scalar_one())
                connection = (await conn.get_raw_connection()).dbapi_connection
                if self._last is not None and self._last[:2] == (connection, version):
                    return self._last[2]  # nothing committed since
            rows: list[Any] = list((await conn.execute(text(self._statement))).all())
        tables: dict[str, tuple[int, str]] = {}
        for name, count, digest in rows:
            value = str(digest)
            if sqlite:
                value = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
            tables[str(name)] = (int(count), value)
        snapshot = Snapshot(tables)
        if sqlite:
            self._last = (connection, version, snapshot)
        return snapshot

    async def dispose(self) -> None:
        await self._db.dispose()
