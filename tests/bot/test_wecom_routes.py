"""/wecom/callback through the real app (WeCom settings on), on SQLite and PostgreSQL, driven by the
emulator's callback side: URL verification, inbox-then-ack, dedupe, refusals, background
processing, and crash recovery at start-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import JOBS, RUNTIME, create_app
from bot.wecom.callback import InboundEvent
from bot.wecom.routes import WECOM_CALLBACKS
from config.settings import load_settings
from emulator.wecom import send_callback, template_card_event_xml, text_message_xml, verify_url
from store.db import Database
from store.inbox import SqlInbox
from tests.fakes import cut_short_request

CONFIG = Path(__file__).resolve().parents[2] / "config"
CORP = "wwcorp0123456789"
TOKEN = "callback-token-77"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WECOM_ENV = {
    "TICKETBOT_WECOM_CORP_ID": CORP,
    "TICKETBOT_WECOM_AGENT_ID": "1000002",
    "TICKETBOT_WECOM_SECRET": "app-secret",
    "TICKETBOT_WECOM_TOKEN": TOKEN,
    "TICKETBOT_WECOM_AES_KEY": AES_KEY,
}
WAIT = 10.0  # an upper bound for awaiting an asyncio.Event, never a sleep


@dataclass
class Recorder:
    """A fake on_event: records events; `wait(n)` returns once n have arrived."""

    events: list[InboundEvent] = field(default_factory=list)
    fail: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, event: InboundEvent) -> None:
        self.events.append(event)
        self.changed.set()
        if self.fail:
            raise RuntimeError("handler broke")

    async def wait(self, n: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.events) < n:
                self.changed.clear()
                await self.changed.wait()


@dataclass
class Bot:
    client: TestClient[web.Request, web.Application]
    app: web.Application
    recorder: Recorder

    @property
    def url(self) -> str:
        return str(self.client.make_url("/wecom/callback"))

    async def send(self, xml: str, **kw: Any) -> tuple[int, str]:
        opts: dict[str, Any] = {"token": TOKEN, "aes_key": AES_KEY, "corp_id": CORP, **kw}
        status, body = await send_callback(self.client.session, self.url, xml, **opts)
        return status, body

    async def settle(self) -> None:
        """Wait for every background processing task the app is running."""
        async with asyncio.timeout(WAIT):
            while tasks := set(self.app[WECOM_CALLBACKS].tasks):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def rows(self) -> list[tuple[str, str, int]]:
        return list(await SqlInbox(self.app[RUNTIME].db).statuses())


BotFactory = Callable[..., Awaitable[Bot]]


@pytest.fixture
def make_bot(aiohttp_client: Any, database_url: str) -> BotFactory:
    async def make(recorder: Recorder | None = None, **env: str) -> Bot:
        recorder = recorder or Recorder()
        settings = load_settings(env={**WECOM_ENV, **env}, database_url=database_url, config_dir=CONFIG)
        app = await create_app(settings, on_wecom_event=recorder)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        bot = Bot(client, app, recorder)
        await bot.settle()  # the start-up recovery
        return bot

    return make


def text_msg(msg_id: int = 7001, content: str = "请假 明天") -> str:
    return text_message_xml(
        corp_id=CORP,
        from_user="zhangsan",
        content=content,
        msg_id=msg_id,
        agent_id=1000002,
        create_time=1700000000,
    )


async def test_url_verification_echoes_the_plaintext_exactly(make_bot: BotFactory) -> None:
    bot = await make_bot()
    check = await verify_url(bot.client.session, bot.url, token=TOKEN, aes_key=AES_KEY, corp_id=CORP)
    assert check.ok, check
    resp = await bot.client.get("/wecom/callback")  # no parameters
    assert (
        resp.status == 400
        and (await resp.text()) == "query parameter missing: msg_signature, timestamp, nonce, echostr"
    )


async def test_url_verification_with_another_token_is_403(make_bot: BotFactory) -> None:
    bot = await make_bot()
    check = await verify_url(bot.client.session, bot.url, token="wrong", aes_key=AES_KEY, corp_id=CORP)
    assert (check.status, check.body) == (403, "msg_signature does not match")


async def test_verification_answer_is_plain_text_without_newline(make_bot: BotFactory) -> None:
    bot = await make_bot()
    check = await verify_url(
        bot.client.session, bot.url, token=TOKEN, aes_key=AES_KEY, corp_id=CORP, echo="8675309+/="
    )
    assert check.ok and check.body == "8675309+/="


async def test_a_message_is_stored_acked_empty_and_processed(make_bot: BotFactory) -> None:
    bot = await make_bot()
    assert await bot.send(text_msg()) == (200, "")
    await bot.recorder.wait(1)
    await bot.settle()
    (event,) = bot.recorder.events
    assert (event.dedupe_key, event.content, event.from_user) == ("msg:7001", "请假 明天", "zhangsan")
    assert await bot.rows() == [("msg:7001", "done", 0)]


async def test_the_same_message_twice_is_one_row_and_two_200s(make_bot: BotFactory) -> None:
    bot = await make_bot()
    assert await bot.send(text_msg(), nonce="1", timestamp="1700000000") == (200, "")
    assert await bot.send(text_msg(), nonce="2", timestamp="1700000003") == (200, "")
    await bot.settle()
    assert await bot.rows() == [("msg:7001", "done", 0)]
    assert len(bot.recorder.events) == 1


async def test_two_card_clicks_in_one_second_are_two_rows(make_bot: BotFactory) -> None:
    bot = await make_bot()
    for key in ("approve:1", "reject:1"):
        xml = template_card_event_xml(
            corp_id=CORP,
            from_user="lisi",
            create_time=1700000100,
            event_key=key,
            task_id="task1",
            response_code="rc",
            agent_id=1000002,
        )
        assert await bot.send(xml) == (200, "")
    await bot.settle()
    assert [k for k, _, _ in await bot.rows()] == [
        "evt:lisi:1700000100:template_card_event:approve:1:task1",
        "evt:lisi:1700000100:template_card_event:reject:1:task1",
    ]


async def test_bad_signature_is_403_and_stores_nothing(
    make_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await make_bot()
    with caplog.at_level(logging.INFO, logger="ticketbot.wecom.callback"):
        assert await bot.send(text_msg(), token="someone-elses-token") == (
            403,
            "msg_signature does not match",
        )
    assert await bot.rows() == []
    refused = [r for r in caplog.records if r.getMessage() == "wecom callback refused"]
    assert refused and refused[0].levelno == logging.INFO
    assert refused[0].__dict__["reason"] == "msg_signature does not match"
    assert all(TOKEN not in r.getMessage() and AES_KEY not in str(r.__dict__) for r in caplog.records)


async def test_message_for_another_corp_is_403(make_bot: BotFactory) -> None:
    bot = await make_bot()
    status, _ = await bot.send(text_msg(), corp_id="wwanother")
    assert status == 403
    assert await bot.rows() == []


async def test_oversized_and_garbage_bodies_are_400(make_bot: BotFactory) -> None:
    bot = await make_bot()
    query = {"msg_signature": "x", "timestamp": "1", "nonce": "1"}
    resp = await bot.client.post(
        "/wecom/callback", params=query, data=b"<xml>" + b"a" * (64 * 1024) + b"</xml>"
    )
    assert resp.status == 400 and (await resp.text()) == "the body is larger than 65536 bytes"
    resp = await bot.client.post("/wecom/callback", params=query, data=b"garbage")
    assert resp.status == 400 and (await resp.text()) == "the body is not well-formed XML"
    assert await bot.rows() == []


async def test_a_failing_processor_leaves_the_row_for_a_retry(make_bot: BotFactory) -> None:
    bot = await make_bot(Recorder(fail=True))
    assert await bot.send(text_msg()) == (200, "")
    await bot.recorder.wait(1)
    await bot.settle()
    assert await bot.rows() == [("msg:7001", "pending", 1)]


async def test_rows_left_processing_by_a_crash_are_processed_at_startup(
    make_bot: BotFactory, database_url: str
) -> None:
    db = Database(database_url)
    try:
        inbox = SqlInbox(db)
        long_ago = datetime.now(UTC) - timedelta(hours=1)
        for msg_id in (1, 2, 3):
            assert await inbox.add(
                "wecom", f"msg:{msg_id}", text_msg(msg_id), long_ago + timedelta(seconds=msg_id)
            )
        crashed = await inbox.claim(1, long_ago)  # claimed an hour ago by a process that died
        assert [i.dedupe_key for i in crashed] == ["msg:1"]
        live = await inbox.claim_key("wecom", "msg:3", datetime.now(UTC))  # another worker has it now
        assert live is not None
    finally:
        await db.dispose()

    bot = await make_bot()
    assert sorted(e.dedupe_key for e in bot.recorder.events) == ["msg:1", "msg:2"]
    assert await bot.rows() == [("msg:1", "done", 0), ("msg:2", "done", 0), ("msg:3", "processing", 0)]


async def test_no_wecom_routes_without_wecom_settings(aiohttp_client: Any, database_url: str) -> None:
    app = await create_app(load_settings(env={}, database_url=database_url, config_dir=CONFIG))
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    assert WECOM_CALLBACKS not in app
    assert (await client.get("/wecom/callback")).status == 404


@dataclass
class Gate:
    """A processor that holds every event until `open` is set; counts how many run at once."""

    open: asyncio.Event = field(default_factory=asyncio.Event)
    running: int = 0
    most: int = 0
    done: list[str] = field(default_factory=list)
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, event: InboundEvent) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        self.entered.set()
        await self.open.wait()
        self.running -= 1
        self.done.append(event.dedupe_key)


async def test_processing_runs_a_bounded_number_of_events_at_once(make_bot: BotFactory) -> None:
    from bot.inbox import MAX_CONCURRENT

    gate = Gate()
    bot = await make_bot(cast(Any, gate))
    for i in range(MAX_CONCURRENT + 3):
        assert await bot.send(text_msg(8000 + i)) == (200, "")  # acked while earlier ones are held
    async with asyncio.timeout(WAIT):
        while gate.running < MAX_CONCURRENT:
            gate.entered.clear()
            await gate.entered.wait()
    assert gate.running == MAX_CONCURRENT
    gate.open.set()
    await bot.settle()
    assert gate.most == MAX_CONCURRENT and len(gate.done) == MAX_CONCURRENT + 3
    assert {status for _, status, _ in await bot.rows()} == {"done"}


async def test_beyond_the_backlog_events_wait_in_the_inbox_for_the_drain(make_bot: BotFactory) -> None:
    gate = Gate()
    bot = await make_bot(cast(Any, gate))
    callbacks = bot.app[WECOM_CALLBACKS]
    callbacks.worker.max_backlog = 2  # a tiny backlog for the test
    for i in range(4):
        assert await bot.send(text_msg(8100 + i)) == (200, "")
    assert len(callbacks.tasks) == 2
    gate.open.set()
    await bot.settle()
    statuses = sorted(status for _, status, _ in await bot.rows())
    assert statuses == ["done", "done", "pending", "pending"]
    await callbacks.recover_and_drain()  # what the app's "wecom-inbox" job runs every minute
    assert {status for _, status, _ in await bot.rows()} == {"done"} and len(gate.done) == 4
    assert "wecom-inbox" in bot.app[JOBS].names


async def test_a_body_cut_short_by_the_sender_is_refused_not_an_unhandled_error(
    make_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused (400, logged at INFO as a refusal), never an "unhandled error" with a stack and a 500
    (found by the callback fuzz, tests/fuzz/test_callback_fuzz.py)."""
    from bot.http import TRUNCATED

    bot = await make_bot()
    request = cut_short_request(bot.app, "/wecom/callback?msg_signature=a&timestamp=1&nonce=1", {})
    with caplog.at_level(logging.INFO, logger="ticketbot"):
        answer = await bot.app[WECOM_CALLBACKS].handle_post(request)
    assert isinstance(answer, web.Response) and (answer.status, answer.text) == (400, TRUNCATED)
    assert [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("ticketbot.wecom")
    ] == [("INFO", "wecom callback refused")]
    assert await bot.rows() == []
