"""The database handle: SQLAlchemy async engine(s) built from one URL.

SQLite (aiosqlite, the embedded default) gets TWO engines over the same file:

- a WRITE engine with exactly one pooled connection whose transactions start with
  ``BEGIN IMMEDIATE``: the write lock is taken at the start of the transaction, so writers queue
  on the pool (in-process) and on ``busy_timeout`` (across processes) instead of failing with
  SQLITE_BUSY half-way through a read-then-write transaction;
- a READ engine with a few connections whose transactions start with a plain (deferred)
  ``BEGIN`` — in WAL mode readers never block the writer and see one consistent snapshot.

Both follow SQLAlchemy's documented recipe for pysqlite/aiosqlite transactions: the driver's own
transaction handling is switched off (``isolation_level = None`` on connect) and the ``begin``
event emits our BEGIN.

PostgreSQL (asyncpg) gets one pooled engine for both; writes run at READ COMMITTED (the ticket
store's optimistic version check handles races), reads in a read-only REPEATABLE READ transaction
so a count and the page it counts agree.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence, Set
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import aiosqlite
from sqlalchemy import Table, bindparam, event, text
from sqlalchemy.dialects import postgresql as pg_insert
from sqlalchemy.dialects import sqlite as sqlite_insert
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement, TextClause

from store.errors import DatabaseError, IntegrityViolation, StoreError

DialectName = Literal["sqlite", "postgresql"]

_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_DRIVERS: Mapping[str, str] = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
SQLITE_BUSY_TIMEOUT_MS = 5000


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Set):
        return sorted(value, key=str)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


def json_dumps(value: object) -> str:
    """JSON for the JSON/JSONB columns: read-only mappings, tuples and sets are accepted."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def parse_url(url: str, schema: str | None = None) -> tuple[URL, str | None]:
    """Normalise a database URL to its async driver and take the PostgreSQL schema from it.

    ``sqlite:///path`` and ``postgresql://...`` are accepted and mapped to aiosqlite / asyncpg. A
    ``?schema=name`` query parameter is an alternative to the `schema` argument (so one URL string
    can carry an isolated schema, e.g. in tests).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL: {exc}") from exc
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise StoreError(
            f"unsupported database URL scheme {parsed.drivername!r}: "
            "use sqlite+aiosqlite or postgresql+asyncpg"
        )
    parsed = parsed.set(drivername=driver)
    query_schema = parsed.query.get("schema")
    if query_schema is not None:
        parsed = parsed.difference_update_query(["schema"])
        value = query_schema if isinstance(query_schema, str) else query_schema[-1]
        if schema is not None and schema != value:
            raise StoreError(f"schema given twice: {schema!r} and ?schema={value!r}")
        schema = value
    if schema is not None:
        if parsed.get_backend_name() != "postgresql":
            raise StoreError("a schema can only be set for PostgreSQL")
        if not _SCHEMA_RE.match(schema):
            raise StoreError(f"invalid schema name {schema!r}: letters, digits and _ only")
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or parsed.query.get("mode") == "memory":
            raise StoreError("SQLite needs a database file (an in-memory database is not supported)")
    return parsed, schema


def _run_statement(conn: Any, operation: str, parameters: Any) -> tuple[Any, list[Any] | None, Any, int]:
    """In aiosqlite's thread: what the stock adapter does in 3-4 hops (cursor, execute, fetchall,
    close), in one."""
    cursor = conn.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        if description:
            return description, cursor.fetchall(), -1, -1
        return None, None, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


def _run_many(conn: Any, operation: str, seq_of_parameters: Any) -> tuple[Any, int]:
    cursor = conn.cursor()
    try:
        cursor.executemany(operation, seq_of_parameters)
        return cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor, but each execute is ONE trip to aiosqlite's thread (the stock
    one makes a trip for the cursor, the statement, the rows and the close): same statements, same
    results, a fraction of the thread hand-offs."""

    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            conn = self._connection
            description, rows, lastrowid, rowcount = self.await_(
                conn._execute(_run_statement, conn._conn, operation, parameters)
            )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self.description = description
        self.lastrowid = lastrowid
        self.rowcount = rowcount
        if rows is not None:
            self._rows = deque(rows)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            conn = self._connection
            lastrowid, rowcount = self.await_(
                conn._execute(_run_many, conn._conn, operation, seq_of_parameters)
            )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self.description = None
        self.lastrowid = lastrowid
        self.rowcount = rowcount


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        return super().cursor(server_side) if server_side else _OneHopCursor(self)


class _OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DBAPI adapter handing out `_OneHopConnection`s."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        conn = super().connect(*arg, **kw)
        if type(conn) is AsyncAdapt_aiosqlite_connection and hasattr(conn._connection, "_execute"):
            return _OneHopConnection(self, conn._connection)
        return conn


def _sqlite_connect_listener(*, write: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Switch off the driver's implicit BEGIN/COMMIT so the "begin" event decides (recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if write:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            if not write:
                cursor.execute("PRAGMA query_only=ON")
        finally:
            cursor.close()

    return on_connect


def _begin_listener(statement: str) -> Any:
    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(statement)

    return on_begin


def _describe(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class Database:
    """Engines for one database URL, with transactional `write()` / `read()` scopes."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        echo: bool = False,
        pool_size: int = 10,
        read_pool_size: int = 4,
        pool_timeout: float = 30.0,
    ) -> None:
        parsed, self._schema = parse_url(url, schema)
        self._url = parsed
        backend = parsed.get_backend_name()
        self._dialect: DialectName = "sqlite" if backend == "sqlite" else "postgresql"
        common: dict[str, Any] = {"echo": echo, "json_serializer": json_dumps, "pool_timeout": pool_timeout}
        if self._dialect == "sqlite":
            Path(parsed.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
            common["module"] = _OneHopDbapi(aiosqlite, sqlite3)
            self._write = create_async_engine(parsed, pool_size=1, max_overflow=0, **common)
            event.listen(self._write.sync_engine, "connect", _sqlite_connect_listener(write=True))
            event.listen(self._write.sync_engine, "begin", _begin_listener("BEGIN IMMEDIATE"))
            self._read = create_async_engine(
                parsed, pool_size=read_pool_size, max_overflow=read_pool_size, **common
            )
            event.listen(self._read.sync_engine, "connect", _sqlite_connect_listener(write=False))
            event.listen(self._read.sync_engine, "begin", _begin_listener("BEGIN"))
        else:
            connect_args: dict[str, Any] = {}
            if self._schema is not None:
                connect_args["server_settings"] = {"search_path": self._schema}
            self._write = create_async_engine(
                parsed,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                connect_args=connect_args,
                **common,
            )
            self._read = self._write

    @property
    def dialect(self) -> DialectName:
        return self._dialect

    @property
    def schema(self) -> str | None:
        return self._schema

    @property
    def url(self) -> str:
        """The normalised URL, password hidden (for logs)."""
        return self._url.render_as_string(hide_password=True)

    @property
    def write_engine(self) -> AsyncEngine:
        return self._write

    @property
    def read_engine(self) -> AsyncEngine:
        return self._read

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction: commits when the block ends, rolls back on an exception.

        On SQLite the transaction holds the database's write lock from its first statement (one
        writer at a time, so never open a second `write()` inside one: it would wait for the
        pool timeout); on PostgreSQL it is an ordinary READ COMMITTED transaction.
        """
        try:
            async with self._write.begin() as conn:
                yield conn
        except IntegrityError as exc:
            raise IntegrityViolation(_describe(exc)) from exc
        except SQLAlchemyError as exc:
            raise DatabaseError(_describe(exc)) from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction over one consistent snapshot. Writing in it fails."""
        try:
            async with self._read.connect() as conn:
                if self._dialect == "postgresql":
                    await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
                async with conn.begin():
                    yield conn
        except IntegrityError as exc:
            raise IntegrityViolation(_describe(exc)) from exc
        except SQLAlchemyError as exc:
            raise DatabaseError(_describe(exc)) from exc

    async def dispose(self) -> None:
        await self._write.dispose()
        if self._read is not self._write:
            await self._read.dispose()


def cacheable(stmt: ClauseElement, dialect: DialectName, keys: Sequence[str]) -> TextClause:
    """`stmt` (e.g. an upsert) as a text() construct with the very same SQL and typed bound parameters.

    SQLAlchemy 2.0 never caches the compiled form of the dialects' ``INSERT .. ON CONFLICT`` (their
    Insert sets ``inherit_cache = False``), so each execution compiles it again; a text() construct
    is cached like any other statement. `keys` are the parameters every execution passes; the SQL
    is SQLAlchemy's own compilation of `stmt` for `dialect` (named parameters, re-rendered for the
    driver's paramstyle and bind casts when the text is executed)."""
    named = (sqlite_insert.dialect if dialect == "sqlite" else pg_insert.dialect)(paramstyle="named")
    compiled = stmt.compile(dialect=named, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    binds = [
        bindparam(
            compiled.bind_names[b],
            value=None if b.required else b.value,
            type_=b.type,
            required=b.required,
        )
        for b in compiled.binds.values()
    ]
    return text(compiled.string).bindparams(*binds)


def upsert(dialect: DialectName, table: Table) -> pg_insert.Insert | sqlite_insert.Insert:
    """An INSERT that supports ``on_conflict_do_update/do_nothing`` (same API on both dialects)."""
    return pg_insert.insert(table) if dialect == "postgresql" else sqlite_insert.insert(table)
