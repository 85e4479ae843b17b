"""Support for the callback fuzz (tests/fuzz/test_callback_fuzz.py); reusable by other tests.

- Database snapshots: tests/db_snapshot.py (`DbWatch`, `prove_watch`).
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
import logging
import struct
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from Crypto.Cipher import AES
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from bot.app import NOTIFIER, RUNTIME
from bot.dingtalk.routes import DINGTALK_CALLBACKS
from bot.inbox import InboxWorker
from bot.wecom.routes import WECOM_CALLBACKS
from emulator.wecom import SystemClock, WeComEmulator
from emulator.wecom_crypto import aes_key
from store.db import Database
from tests.bot import test_dingtalk_cards as dt
from tests.bot import test_wecom_chat as wc

T = TypeVar("T")
WAIT = 60.0  # the bound of every wait (never a sleep)

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
