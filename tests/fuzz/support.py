"""Support for the callback fuzz (tests/fuzz/test_callback_fuzz.py); reusable by other tests.

- Database snapshots. `db_snapshot(db)`: every table's row count, rows and a digest of them, read
  in one transaction; `snapshot_diff(before, after)`: the rows removed and added, per table.
  `Fingerprint`: every table's row count and digest computed by the database in ONE statement
  (cheap). `DbWatch`: the state as last accepted; it reads rows again only of the tables whose
  fingerprint changed. `prove_watch`: shows that a watch sees an inserted, changed, deleted row.
- `Platforms` / `make_platforms`: the real app with WeCom (callback, replay window on) and DingTalk
  (robot, card callback, HTTP event subscription, corp checks on) both enabled, each against its
  emulator, built with the DingTalk end-to-end tests' builder (`make_ding`) and the WeCom chat
  tests' constants and directory.
- `held(worker)`: inbox workers that store but do not process (as while shutting down); `drain`
  runs the product's processing entry point (`InboxWorker.drain`) on what they stored.
- `craft_ciphertext` / `layout`: the platforms' AES layer with any plaintext block, any padding.
- `LogWatch`: the ticketbot log records that mean a bug (ERROR, or any record with a stack).
- `run_cases`: a bounded, derandomized hypothesis run of a blocking check (the test's event loop
  keeps serving the app meanwhile: see `Loop`). The cases run are printed in the terminal summary
  by tests/case_counts.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import struct
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from Crypto.Cipher import AES
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, inspect, text, update

from bot.app import NOTIFIER, RUNTIME
from bot.dingtalk.routes import DINGTALK_CALLBACKS
from bot.inbox import InboxWorker
from bot.wecom.routes import WECOM_CALLBACKS
from emulator.wecom import SystemClock, WeComEmulator
from emulator.wecom_crypto import aes_key
from store.db import Database
from store.tables import api_nonce
from tests.bot import test_dingtalk_cards as dt
from tests.bot import test_wecom_chat as wc

T = TypeVar("T")
WAIT = 60.0  # the bound of every wait (never a sleep)

# ---------------------------------------------------------------- database snapshots

Row = tuple[tuple[str, str], ...]  # (column, repr(value)) in column order


@dataclass(frozen=True, slots=True)
class TableState:
    count: int
    digest: str  # sha256 over the sorted rows
    rows: tuple[Row, ...]  # sorted


Snapshot = Mapping[str, TableState]


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


async def table_names(db: Database) -> tuple[str, ...]:
    """Every table of the database (the migrations' bookkeeping table included)."""
    return tuple(sorted(await _columns(db)))


async def _columns(db: Database) -> dict[str, list[str]]:
    def read(sync: Any) -> dict[str, list[str]]:
        found = inspect(sync)
        return {name: [c["name"] for c in found.get_columns(name)] for name in found.get_table_names()}

    async with db.read() as conn:
        columns: dict[str, list[str]] = await conn.run_sync(read)
    return columns


async def db_snapshot(db: Database, tables: tuple[str, ...] | None = None) -> dict[str, TableState]:
    """Row count, sorted rows and their digest of every table in `tables` (default: all), read in
    ONE transaction (a consistent snapshot on both backends)."""
    names = tables if tables is not None else await table_names(db)
    out: dict[str, TableState] = {}
    async with db.read() as conn:
        quote = conn.dialect.identifier_preparer.quote
        for name in names:
            result = await conn.execute(text(f"SELECT * FROM {quote(name)}"))
            columns = list(result.keys())
            rows = sorted(tuple((c, repr(v)) for c, v in zip(columns, r, strict=True)) for r in result)
            digest = hashlib.sha256()
            for row in rows:
                digest.update(repr(row).encode("utf-8", "backslashreplace") + b"\0")
            out[name] = TableState(len(rows), digest.hexdigest(), tuple(rows))
    return out


class Fingerprint:
    """Every table's row count and a digest of all its rows and columns, computed by the database in
    ONE statement: the cheap check that nothing changed (`db_snapshot` says what did).

    PostgreSQL: md5 over the rows as text, sorted. SQLite (no hash function): each row's values
    `quote()`d, in rowid order, concatenated (hashed here); a changed order alone (a row deleted
    and inserted again) shows as a change, which `db_snapshot` then settles."""

    def __init__(self, db: Database, sql: str) -> None:
        self.db = db
        self.sql = sql

    @classmethod
    async def of(cls, db: Database) -> Fingerprint:
        columns = await _columns(db)
        quote = db.write_engine.dialect.identifier_preparer.quote
        parts = []
        for name in sorted(columns):
            table = quote(name)
            if db.dialect == "postgresql":
                value = (
                    f"(SELECT count(*)::text || ':' || coalesce(md5(string_agg(r::text, chr(30) "
                    f"ORDER BY r::text)), '') FROM {table} AS r)"
                )
            else:
                row = " || char(31) || ".join(f"quote({quote(c)})" for c in columns[name])
                value = (
                    f"((SELECT count(*) FROM {table}) || ':' || coalesce((SELECT group_concat(r, char(30)) "
                    f"FROM (SELECT {row} AS r FROM {table} ORDER BY rowid)), ''))"
                )
            parts.append(f"SELECT '{name}' AS name, {value} AS digest")
        return cls(db, " UNION ALL ".join(parts))

    async def __call__(self) -> dict[str, str]:
        async with self.db.read() as conn:
            rows = (await conn.execute(text(self.sql))).all()
        return {
            str(name): hashlib.sha256(str(digest).encode("utf-8", "backslashreplace")).hexdigest()
            for name, digest in rows
        }


class DbWatch:
    """A database's state as last `accept`ed (every table's rows and fingerprint); `read()` reads it
    again, fetching the rows of only the tables whose fingerprint changed."""

    def __init__(self, db: Database, fingerprint: Fingerprint, tables: tuple[str, ...]) -> None:
        self.db = db
        self.fingerprint = fingerprint
        self.tables = tables
        self.rows: Snapshot = {}
        self.prints: dict[str, str] = {}

    @classmethod
    async def start(cls, db: Database) -> DbWatch:
        watch = cls(db, await Fingerprint.of(db), await table_names(db))
        prints = await watch.fingerprint()
        watch.accept(await db_snapshot(db, watch.tables), prints)
        return watch

    async def read(self) -> tuple[Snapshot, dict[str, str]]:
        prints = await self.fingerprint()
        changed = tuple(name for name in self.tables if prints.get(name) != self.prints.get(name))
        fresh = await db_snapshot(self.db, changed) if changed else {}
        return {**self.rows, **fresh}, prints

    async def changes(self) -> dict[str, TableDiff]:
        """What changed since the last `accept`; if nothing did, the state read is accepted."""
        rows, prints = await self.read()
        diff = snapshot_diff(self.rows, rows)
        if not diff:
            self.accept(rows, prints)  # e.g. the same rows in another order (SQLite's rowid order)
        return diff

    def accept(self, rows: Snapshot, prints: dict[str, str]) -> None:
        self.rows, self.prints = rows, prints


async def prove_watch(watch: DbWatch) -> None:
    """Proof that `watch` sees what it must (its fingerprint included: a table is only read again
    when its fingerprint changed): a row inserted, one column of it changed, the row deleted, each
    reported; the database is left as it was."""
    original = watch.rows
    row = {"app": "fuzz-self-check", "nonce": "n1", "expires_at": datetime(2030, 1, 1, tzinfo=UTC)}
    steps: list[tuple[Any, tuple[int, int]]] = [
        (insert(api_nonce).values(**row), (0, 1)),
        (update(api_nonce).where(api_nonce.c.app == row["app"]).values(nonce="n2"), (1, 1)),
        (delete(api_nonce).where(api_nonce.c.app == row["app"]), (1, 0)),
    ]
    for statement, (removed, added) in steps:
        async with watch.db.write() as conn:
            await conn.execute(statement)
        diff = await watch.changes()
        assert set(diff) == {"api_nonce"}, diff
        assert (len(diff["api_nonce"].removed), len(diff["api_nonce"].added)) == (removed, added), diff
        watch.accept(*await watch.read())
    assert snapshot_diff(original, watch.rows) == {}


def snapshot_diff(before: Snapshot, after: Snapshot) -> dict[str, TableDiff]:
    """The tables whose rows differ (count or digest), with the rows removed and added."""
    out: dict[str, TableDiff] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old is not None and new is not None and (old.count, old.digest) == (new.count, new.digest):
            continue
        was = Counter(old.rows if old else ())
        now = Counter(new.rows if new else ())
        out[name] = TableDiff(tuple((was - now).elements()), tuple((now - was).elements()))
    return out


def describe_diff(diff: Mapping[str, TableDiff], limit: int = 600) -> str:
    parts = []
    for name, d in diff.items():
        parts.append(f"{name}: -{len(d.removed)} +{len(d.added)} {[dict(r) for r in d.added][:2]!r:.{limit}}")
    return "; ".join(parts) or "no change"


# ---------------------------------------------------------------- the app with both platforms

DING_TOKEN = dt.TOKEN
DING_AES = dt.AES
DING_OWNER = dt.APP_KEY  # the owner key ($key) defaults to the app key
REPLAY_WINDOW = 300  # seconds (TICKETBOT_WECOM_REPLAY_WINDOW)


@dataclass
class Platforms:
    app: web.Application
    client: TestClient[web.Request, web.Application]
    wecom: WeComEmulator
    dingtalk: dt.Ding  # the DingTalk end-to-end tests' helper (say, cards, params) on this app

    @property
    def db(self) -> Database:
        return self.app[RUNTIME].db

    @property
    def wecom_worker(self) -> InboxWorker[Any]:
        return self.app[WECOM_CALLBACKS].worker

    @property
    def ding_worker(self) -> InboxWorker[Any]:
        return self.app[DINGTALK_CALLBACKS].worker

    async def settle(self) -> None:
        """Every running inbox task finished, then every due card sent."""
        async with asyncio.timeout(WAIT):
            while tasks := self.wecom_worker.tasks | self.ding_worker.tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await self.app[NOTIFIER].drain()


async def make_platforms(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Platforms:
    wecom = WeComEmulator(
        corp_id=wc.CORP, apps={wc.AGENT: wc.SECRET}, clock=SystemClock(), org=wc.emulator_org()
    )
    wecom_server: TestServer = await aiohttp_server(wecom.app(), access_log=None)
    ding = await dt.make_ding(
        aiohttp_server,
        aiohttp_client,
        database_url,
        TICKETBOT_WECOM_CORP_ID=wc.CORP,
        TICKETBOT_WECOM_AGENT_ID=str(wc.AGENT),
        TICKETBOT_WECOM_SECRET=wc.SECRET,
        TICKETBOT_WECOM_TOKEN=wc.TOKEN,
        TICKETBOT_WECOM_AES_KEY=wc.AES_KEY,
        TICKETBOT_WECOM_API_BASE=str(wecom_server.make_url("")).rstrip("/"),
        TICKETBOT_WECOM_REPLAY_WINDOW=str(REPLAY_WINDOW),
        TICKETBOT_DINGTALK_TOKEN=DING_TOKEN,
        TICKETBOT_DINGTALK_AES_KEY=DING_AES,
        TICKETBOT_DINGTALK_CORP_ID=dt.CORP,
        TICKETBOT_DUE_WORK_SECONDS="0",  # nothing but the requests writes to the database
    )
    platforms = Platforms(ding.app, ding.client, wecom, ding)
    await platforms.settle()
    return platforms


@contextlib.contextmanager
def held(*workers: InboxWorker[Any]) -> Iterator[None]:
    """While inside, the workers store what the routes accept but do not process it (as while
    shutting down); `drain(worker)` processes what is stored."""
    for worker in workers:
        worker.closing = True
    try:
        yield
    finally:
        for worker in workers:
            worker.closing = False


async def drain(worker: InboxWorker[Any]) -> int:
    """Process every due stored row of a held worker, through `InboxWorker.drain`."""
    worker.closing = False
    try:
        async with asyncio.timeout(WAIT):
            return await worker.drain()
    finally:
        worker.closing = True


# ---------------------------------------------------------------- crafted ciphertexts


def craft_ciphertext(encoding_aes_key: str, plain: bytes, *, pad: bytes | None = None) -> str:
    """base64(AES-256-CBC(plain + pad)) with the platforms' key and IV; `pad` defaults to PKCS#7
    to 32-byte blocks. A `pad` that leaves a partial block is zero-filled (it must encrypt)."""
    key = aes_key(encoding_aes_key)
    if pad is None:
        n = 32 - len(plain) % 32
        pad = bytes([n]) * n
    data = plain + pad
    data += b"\0" * (-len(data) % 16)
    return base64.b64encode(AES.new(key, AES.MODE_CBC, key[:16]).encrypt(data)).decode("ascii")


def layout(msg: bytes, receive_id: bytes, *, length: int | None = None, prefix: bytes = b"r" * 16) -> bytes:
    """The plaintext block: random(16) + big-endian length + msg + receive id (unpadded)."""
    return prefix + struct.pack(">I", len(msg) if length is None else length) + msg + receive_id


# ---------------------------------------------------------------- logs


class LogWatch(logging.Handler):
    """Collects the ticketbot records that mean a bug: ERROR and above, or any with a stack."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            exc = record.exc_info[1] if record.exc_info else None
            self.bad.append(f"{record.levelname} {record.name}: {record.getMessage()} {exc!r}"[:800])

    def take(self) -> list[str]:
        found, self.bad = self.bad, []
        return found


@contextlib.contextmanager
def watching_logs() -> Iterator[LogWatch]:
    """A LogWatch on the "ticketbot" logger (ERROR records and records with a stack are made at
    every level the product logs them: WARNING and above)."""
    watch = LogWatch()
    logger = logging.getLogger("ticketbot")
    logger.addHandler(watch)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)


# ---------------------------------------------------------------- running hypothesis off the loop


class Loop:
    """Runs coroutines on the test's event loop from the hypothesis thread (blocking)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=WAIT)


def run_cases(
    strategy: st.SearchStrategy[T], check: Callable[[T], None], examples: int, explicit: Sequence[T] = ()
) -> int:
    """`check` on the `explicit` cases, then on `examples` generated ones (derandomized, no example
    database, no shrinking: every case runs against a live database, so the run is bounded and
    repeatable); how many ran. Blocking: call it through `asyncio.to_thread`."""
    ran = 0

    def prop(case: T) -> None:
        nonlocal ran
        ran += 1
        check(case)

    test = given(case=strategy)(prop)
    for case in reversed(explicit):  # example() decorators run bottom-up
        test = example(case=case)(test)
    settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        report_multiple_bugs=False,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )(test)()
    return ran
