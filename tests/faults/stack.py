"""The real app wired to the WeCom emulator for fault tests: real HTTP, real callback crypto, the
real database (SQLite or PostgreSQL), and helpers that count what reached WeCom and what the
database says.

- The notifier's card sender is the product's `WeComSender` over a `WeComClient` pointed at the
  emulator, built here so the test sets its timeout (a stalled call is given up on quickly) and
  its retry pause (no sleeping: an immediate return).
- With `fake_clock=True` the notifier runs on a `FakeClock` and its background loop is stopped:
  `drive()` runs passes and moves the clock to the next due send or close until nothing is left,
  so every backoff passes without waiting. Otherwise the app runs as deployed (system clock,
  notifier loop on).
- Nothing sleeps: callbacks are awaited (the inbox tasks), stalled calls are released and their
  record awaited through the emulator's `on_record` hook, every wait bounded by `asyncio.timeout`.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import NOTIFIER, RUNTIME, create_app
from bot.notify.notifier import Notifier
from bot.wecom.client import WeComClient
from bot.wecom.routes import WECOM_CALLBACKS
from bot.wecom.sender import WeComSender
from config.settings import load_settings
from core.ticket import FlowLog, Ticket
from emulator.wecom import (
    CallbackResponse,
    CardUpdate,
    DroppedMessage,
    Failure,
    SentMessage,
    SystemClock,
    WeComEmulator,
    send_callback,
    template_card_event_xml,
    text_message_xml,
)
from store.deliveries import Delivery, OutboxEvent, SqlDeliveries
from store.queries import SqlTicketQueries
from store.tables import delivery
from tests.bot.test_wecom_chat import AES_KEY, AGENT, CONFIG, CORP, SECRET, TOKEN, emulator_org
from tests.fakes import FakeClock

WAIT = 30.0  # the bound of every wait (never a sleep)
LEAVE = "发起 请假申请 start_date=2024-05-06 end_date=2024-05-07 days=2 reason=家里有事"
TASK_ID = re.compile(r"tb_(\d+)_(\d+)_u(.+)")


async def no_sleep(_: float) -> None:
    """The WeCom client's pause between its own retries: none (the emulator answers at once)."""


def card_ref(message: SentMessage) -> tuple[int, int, int] | None:
    """(ticket id, delivery id, fresh) of a template card, from its task_id
    (bot.cards.wecom.task_id_for: ``tb_<ticket>_<delivery id * 100 + fresh>_u<recipient>``)."""
    if message.msgtype != "template_card":
        return None
    found = TASK_ID.fullmatch(str(message.body["template_card"].get("task_id", "")))
    if found is None:
        return None
    seq = int(found.group(2))
    return int(found.group(1)), seq // 100, seq % 100


@dataclass
class Stack:
    emulator: WeComEmulator
    client: TestClient[web.Request, web.Application]
    app: web.Application
    clock: FakeClock | None
    deliveries: SqlDeliveries[Delivery, OutboxEvent]
    queries: SqlTicketQueries
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(50001))
    recorded: int = 0  # on_record calls so far
    _record_seen: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        def on_record(_: SentMessage | CardUpdate | DroppedMessage | Failure) -> None:
            self.recorded += 1
            self._record_seen.set()

        self.emulator.on_record = on_record

    @property
    def notifier(self) -> Notifier:
        return self.app[NOTIFIER]

    # ---------------------------------------------------------------- callbacks (WeCom -> the app)

    async def post(self, xml: str) -> CallbackResponse:
        """One encrypted, signed callback as WeCom sends it (WeCom's 5 s deadline)."""
        url = str(self.client.make_url("/wecom/callback"))
        return await send_callback(self.client.session, url, xml, token=TOKEN, aes_key=AES_KEY, corp_id=CORP)

    async def callbacks_done(self) -> None:
        """Wait until every stored callback has been processed."""
        async with asyncio.timeout(WAIT):
            while tasks := set(self.app[WECOM_CALLBACKS].tasks):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def create_leave(self, userid: str) -> int:
        """`userid` creates a leave request by chat; the ticket id from the bot's text reply."""
        before = len(self.emulator.records.messages)
        xml = text_message_xml(
            corp_id=CORP,
            from_user=userid,
            content=LEAVE,
            msg_id=next(self.ids),
            agent_id=AGENT,
            create_time=1,
        )
        assert (await self.post(xml)).status == 200
        await self.callbacks_done()
        (reply,) = [
            m
            for m in self.emulator.records.messages[before:]
            if m.msgtype == "text" and userid in m.recipients
        ]
        text: str = reply.body["text"]["content"]
        assert text.startswith("已发起工单"), text
        return int(text.rsplit("/tickets/", 1)[1].split("?")[0])

    def click_xml(self, userid: str, card: SentMessage, button: str, create_time: int) -> str:
        """A click on `button` of `card` as WeCom sends it, with a fresh response_code."""
        tc = card.body["template_card"]
        (key,) = [b["key"] for b in tc.get("button_list", []) if b["text"] == button]
        return template_card_event_xml(
            corp_id=CORP,
            from_user=userid,
            create_time=create_time,
            event_key=key,
            task_id=tc["task_id"],
            response_code=self.emulator.issue_click_response_code(card.msgid),
            agent_id=AGENT,
        )

    # ---------------------------------------------------------------- driving the notifier

    async def next_due(self) -> datetime | None:
        """The earliest due send or close in the database (None: nothing is left to do)."""
        c = delivery.c
        sends = select(func.min(c.due_at)).where(c.status == "pending")
        closes = select(func.min(c.close_due_at)).where(
            c.status == "sent", c.close_due_at.is_not(None), c.closed_at.is_(None)
        )
        async with self.app[RUNTIME].db.read() as conn:
            found = [(await conn.execute(q)).scalar_one() for q in (sends, closes)]
        times = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in found if t is not None]
        return min(times, default=None)

    async def release_stalls(self) -> int:
        """Let every held API call answer (the client has given up on it by now) and wait until the
        emulator has recorded what each of them did; how many there were."""
        held = self.emulator.stalls.waiting
        if not held:
            return 0
        target = self.recorded + held
        self.emulator.stalls.release()
        async with asyncio.timeout(WAIT):
            while self.recorded < target:
                self._record_seen.clear()
                await self._record_seen.wait()
        return held

    async def drive(self, *, before_pass: Any = None, max_rounds: int = 400) -> int:
        """Run notifier passes, moving the fake clock to the next due send or close, until nothing
        is left; stalled calls are released after each pass. `before_pass()` (if given) is called
        before each pass (to arm chaos). Returns the number of passes."""
        assert self.clock is not None, "drive() needs the fake clock"
        async with asyncio.timeout(WAIT * 4):
            for rounds in range(1, max_rounds + 1):
                if before_pass is not None:
                    before_pass()
                await self.notifier.drain()
                await self.release_stalls()
                due = await self.next_due()
                if due is None:
                    return rounds
                self.clock.current = max(self.clock.current, due)
        raise AssertionError(f"still due work after {max_rounds} passes")

    async def settle(self) -> None:
        """The app as deployed: callbacks processed, then the notifier drained."""
        await self.callbacks_done()
        async with asyncio.timeout(WAIT):
            await self.notifier.drain()

    # ---------------------------------------------------------------- what happened

    def cards(self, userid: str) -> list[SentMessage]:
        return [
            m
            for m in self.emulator.records.messages
            if m.msgtype == "template_card" and userid in m.recipients
        ]

    def updates_of(self, card: SentMessage) -> list[CardUpdate]:
        return [u for u in self.emulator.records.updates if u.msgid == card.msgid]

    def delivered_cards(self) -> Counter[tuple[str, int, int, int]]:
        """(recipient, ticket, delivery id, fresh) -> how many times WeCom delivered that card."""
        counts: Counter[tuple[str, int, int, int]] = Counter()
        for m in self.emulator.records.messages:
            ref = card_ref(m)
            if ref is None:
                continue
            for userid in m.delivered_to:
                counts[(userid, *ref)] += 1
        return counts

    async def ticket(self, ticket_id: int) -> Ticket:
        found = await self.queries.get_ticket(ticket_id)
        assert found is not None
        return found

    async def flow_logs(self, ticket_id: int) -> list[FlowLog]:
        return await self.queries.flow_logs(ticket_id, desc=False)

    async def ledger(self, ticket_id: int) -> list[Delivery]:
        return list(await self.deliveries.for_ticket(ticket_id))


async def build_stack(
    aiohttp_server: Any,
    aiohttp_client: Any,
    database_url: str,
    *,
    fake_clock: bool,
    client_timeout: float = 10.0,
    seed: int = 0,
    finish_abandoned: bool = False,
) -> Stack:
    emulator = WeComEmulator(
        corp_id=CORP, apps={AGENT: SECRET}, clock=SystemClock(), org=emulator_org(), seed=seed
    )
    if finish_abandoned:  # as WeCom (and `python -m emulator`): a call goes on when its client leaves
        runner = web.AppRunner(emulator.app(), handler_cancellation=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        api_base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    else:  # aiohttp's test server cancels a call whose client left: a timed-out call did nothing
        server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
        api_base = str(server.make_url("")).rstrip("/")
    env = {
        "TICKETBOT_WECOM_CORP_ID": CORP,
        "TICKETBOT_WECOM_AGENT_ID": str(AGENT),
        "TICKETBOT_WECOM_SECRET": SECRET,
        "TICKETBOT_WECOM_TOKEN": TOKEN,
        "TICKETBOT_WECOM_AES_KEY": AES_KEY,
        "TICKETBOT_WECOM_API_BASE": api_base,
        "TICKETBOT_PUBLIC_URL": "https://bot.example.com",
        "TICKETBOT_DUE_WORK_SECONDS": "0",
    }
    settings = load_settings(env=env, database_url=database_url, config_dir=CONFIG)
    clock = FakeClock(datetime.now(UTC)) if fake_clock else None
    session = aiohttp.ClientSession()
    wecom = WeComClient(
        session,
        api_base=api_base,
        corp_id=CORP,
        corp_secret=SECRET,
        agent_id=AGENT,
        clock=clock or SystemClock(),
        sleep=no_sleep,
        timeout=client_timeout,
    )
    app = await create_app(settings, senders={"wecom": WeComSender(wecom, AGENT)}, clock=clock)

    async def close_session(_: web.Application) -> None:
        await session.close()
        if finish_abandoned:
            emulator.stalls.release()
            await runner.cleanup()

    app.on_cleanup.append(close_session)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    runtime = app[RUNTIME]
    stack = Stack(
        emulator,
        client,
        app,
        clock,
        SqlDeliveries(runtime.db),
        SqlTicketQueries(runtime.db),
    )
    await stack.callbacks_done()  # the start-up inbox recovery
    if fake_clock:
        await app[NOTIFIER].stop()  # only drive() sends: every pass is run by the test, on its clock
    return stack
