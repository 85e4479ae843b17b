"""Database snapshots, for checks that a refused request changes nothing (tests/api, tests/fuzz,
tests/bot/test_body_limits.py; tests/test_db_snapshot.py shows them failing on a change).

`DatabaseSnapshots(url, excluded)` opens its own SQLAlchemy engine (store.db.Database) on the app's
database URL (SQLite or PostgreSQL, ``?schema=`` honoured) and reflects the database's tables once,
on the first `take()`. `await snapshots.take()` returns a `Snapshot`: for every table, its row
count and a digest of all its rows in primary-key order, read in ONE statement inside one read
transaction:

- SQLite: each row as its columns' ``quote()`` forms, the rows joined by ``group_concat`` in SQLite
  itself, the text hashed here (sha256);
- PostgreSQL: ``md5(string_agg(row::text ...))`` computed on the server.

No row object is built in Python, so a snapshot of the small databases of tests costs a few
milliseconds. On SQLite it is cheaper still when nothing was committed since the last snapshot:
``PRAGMA data_version`` (on the same connection, read in the same read transaction) changes with
every commit of another connection, so an unchanged value means the previous snapshot holds and
no table is read. That is safe because the engine is the snapshots' own and only ever reads: every
commit comes from another connection. `before.diff(after)` lists what differs, per table (empty:
unchanged); `before.changed(after)` names those tables.

Which rows changed: `await snapshots.rows(tables)` reads every row of the tables named (one read
transaction), each row as (column, repr(value)) pairs, sorted; `rows_diff(before, after)` gives the
rows removed and added of every table whose fingerprint differs. `DbWatch` keeps the state last
accepted (fingerprints and rows) and reads rows again only of the tables whose fingerprint changed,
so a report can say which rows changed at the cost of a snapshot when nothing did. `prove_watch`
shows a watch seeing a row inserted, changed and deleted.

Exclusions are the caller's, each with its reason (none by default). EXCLUDED, for the API property
runs (tests/api/openapi_run.py), leaves out the tables that legitimately change when a request is
refused:

- ``api_nonce``: a request signed with the HMAC scheme has its nonce recorded as soon as it is
  authenticated, before its handler may refuse it; that is the replay protection working (a
  refused request must not be replayable either), so the row is expected on a refusal.

Nothing else is left out: the outbox, the delivery ledger, hook and webhook calls and due work are
all compared (the caller settles the app's background work first, so only the request under test
can move them).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, inspect, text, update
from sqlalchemy.engine import Connection

from store.db import Database
from store.tables import api_nonce

EXCLUDED: Mapping[str, str] = {
    "api_nonce": "an HMAC-signed request's nonce is kept once authenticated, even if the handler refuses",
}

Row = tuple[tuple[str, str], ...]  # (column, repr(value)) in column order


@dataclass(frozen=True)
class Snapshot:
    """table -> (row count, digest of its rows)."""

    tables: Mapping[str, tuple[int, str]]

    def changed(self, after: Snapshot) -> list[str]:
        """The tables that differ from this snapshot to `after` (created and dropped ones too)."""
        names = sorted(set(self.tables) | set(after.tables))
        return [name for name in names if self.tables.get(name) != after.tables.get(name)]

    def diff(self, after: Snapshot) -> list[str]:
        """What changed from this snapshot to `after`: one line per table that differs."""
        out = []
        for name in self.changed(after):
            old, new = self.tables.get(name), after.tables.get(name)
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


def _statement(conn: Connection, excluded: Mapping[str, str]) -> str:
    """The UNION ALL of every table's query (tables reflected from the database itself)."""
    inspector = inspect(conn)
    parts = []
    for name in sorted(inspector.get_table_names()):
        if name in excluded:
            continue
        columns = [c["name"] for c in inspector.get_columns(name)]
        key = list(inspector.get_pk_constraint(name).get("constrained_columns") or [])
        parts.append(_table_query(conn, name, columns, key))
    assert parts, "the database has no table to snapshot"
    return "\nUNION ALL\n".join(parts)


class DatabaseSnapshots:
    """Snapshots of the database at `url`, but for the `excluded` tables (module docstring). Use on
    one event loop; `dispose()` when done."""

    def __init__(self, url: str, excluded: Mapping[str, str] | None = None) -> None:
        self._db = Database(url, pool_size=1, read_pool_size=1)
        self.excluded: Mapping[str, str] = dict(excluded or {})
        self._statement: str | None = None
        self._last: tuple[object, int, Snapshot] | None = None  # SQLite: (connection, data_version, snapshot)

    async def take(self) -> Snapshot:
        sqlite = self._db.dialect == "sqlite"
        async with self._db.read() as conn:
            if self._statement is None:
                self._statement = await conn.run_sync(_statement, self.excluded)
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

    async def rows(self, tables: list[str]) -> dict[str, tuple[Row, ...]]:
        """Every row of each of `tables`, sorted, read in ONE transaction (consistent on both backends)."""
        out: dict[str, tuple[Row, ...]] = {}
        async with self._db.read() as conn:
            for name in tables:
                table = conn.dialect.identifier_preparer.quote(name)
                result = await conn.execute(text(f"SELECT * FROM {table}"))
                columns = list(result.keys())
                out[name] = tuple(sorted(tuple(zip(columns, map(repr, r), strict=True)) for r in result))
        return out

    async def dispose(self) -> None:
        await self._db.dispose()


# ---------------------------------------------------------------- which rows changed


@dataclass(frozen=True)
class State:
    """Every table's fingerprint and rows, as of one snapshot."""

    snapshot: Snapshot
    rows: Mapping[str, tuple[Row, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TableDiff:
    removed: tuple[Row, ...]  # rows of `before` not in `after` (a changed row is removed + added)
    added: tuple[Row, ...]


def row_value(row: Row, column: str) -> str:
    """repr() of `column`'s value in `row`."""
    for name, value in row:
        if name == column:
            return value
    raise KeyError(column)


def rows_diff(before: State, after: State) -> dict[str, TableDiff]:
    """The tables whose fingerprint differs and whose rows do, with the rows removed and added."""
    out: dict[str, TableDiff] = {}
    for name in before.snapshot.changed(after.snapshot):
        was = Counter(before.rows.get(name, ()))
        now = Counter(after.rows.get(name, ()))
        if was != now:
            out[name] = TableDiff(tuple((was - now).elements()), tuple((now - was).elements()))
    return out


def describe_diff(diff: Mapping[str, TableDiff], limit: int = 600) -> str:
    parts = []
    for name, d in diff.items():
        parts.append(f"{name}: -{len(d.removed)} +{len(d.added)} {[dict(r) for r in d.added][:2]!r:.{limit}}")
    return "; ".join(parts) or "no change"


class DbWatch:
    """A database's `State` as last `accept`ed; `read()` reads it again, fetching the rows of only
    the tables whose fingerprint changed. `dispose()` when done."""

    def __init__(self, snapshots: DatabaseSnapshots) -> None:
        self.snapshots = snapshots
        self.state = State(Snapshot({}))

    @classmethod
    async def start(cls, url: str, excluded: Mapping[str, str] | None = None) -> DbWatch:
        watch = cls(DatabaseSnapshots(url, excluded))
        snapshot = await watch.snapshots.take()
        watch.accept(State(snapshot, await watch.snapshots.rows(list(snapshot.tables))))
        return watch

    async def read(self) -> State:
        snapshot = await self.snapshots.take()
        fresh = await self.snapshots.rows(self.state.snapshot.changed(snapshot))
        rows = {name: fresh.get(name, self.state.rows.get(name, ())) for name in snapshot.tables}
        return State(snapshot, rows)

    async def changes(self) -> dict[str, TableDiff]:
        """What changed since the last `accept`; if nothing did, the state read is accepted."""
        state = await self.read()
        diff = rows_diff(self.state, state)
        if not diff:
            self.accept(state)
        return diff

    def accept(self, state: State) -> None:
        self.state = state

    async def dispose(self) -> None:
        await self.snapshots.dispose()


async def prove_watch(watch: DbWatch, db: Database) -> None:
    """Proof that `watch` sees what it must (its fingerprint included: a table is only read again
    when its fingerprint changed): a row inserted through `db`, one column of it changed, the row
    deleted, each reported; the database is left as it was. `api_nonce` must be watched."""
    original = watch.state
    row = {"app": "fuzz-self-check", "nonce": "n1", "expires_at": datetime(2030, 1, 1, tzinfo=UTC)}
    steps: list[tuple[Any, tuple[int, int]]] = [
        (insert(api_nonce).values(**row), (0, 1)),
        (update(api_nonce).where(api_nonce.c.app == row["app"]).values(nonce="n2"), (1, 1)),
        (delete(api_nonce).where(api_nonce.c.app == row["app"]), (1, 0)),
    ]
    for statement, (removed, added) in steps:
        async with db.write() as conn:
            await conn.execute(statement)
        diff = await watch.changes()
        assert set(diff) == {"api_nonce"}, diff
        assert (len(diff["api_nonce"].removed), len(diff["api_nonce"].added)) == (removed, added), diff
        watch.accept(await watch.read())
    assert rows_diff(original, watch.state) == {}
