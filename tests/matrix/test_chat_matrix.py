"""The permission matrix in chat, on WeCom and on DingTalk: every role sends each chat command
(查看, 催办, 评论, 撤回, 同意, 驳回) and clicks each card button (同意, 驳回, 接单, and made-up 转交 /
加签 payloads), through the real app and both platform emulators (encrypted, signed WeCom callbacks;
signed DingTalk robot messages and card callbacks), on SQLite and PostgreSQL. The expectations are
the hand-written table of tests/matrix/expected.py.

- allowed: on a fresh scenario ticket, the person's reply says it was done and the store shows the
  change (a click: on handler_now's own card, which then shows the result);
- refused: on the shared scenario tickets, the person gets a reply saying why (a ticket they may not
  see: "not found or you may not see it"; a card that is not theirs: "out of date or not yours"; a
  made-up button: "no longer valid") and the ticket, its flow log and the store's counts are exactly
  as before. A click by anyone but handler_now is a click by someone who is not a current
  participant on a card not sent to them. Refused too (test_special_click): handler_now's own card
  with its payload edited to another ticket, or to a transition of another state, and handler_old's
  own card of the step he already took (a stale click: the card is shown who decided).

handler_now gets a card for every fresh ticket, more than the 30 messages a minute WeCom takes
for one person: the notifier, the card sender's WeCom client and both emulators run on one fake
clock, which `settle()` moves on to the sends the rate limits put off and `pace()` moves a minute
on before anyone nears the limit; WeCom must drop nothing. Nothing sleeps: callbacks are awaited
through the inbox tasks, the notifier is drained.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import NOTIFIER, create_app
from bot.cards.model import decode_action, encode_action
from bot.dingtalk.processing import NOT_YOUR_CARD as DINGTALK_NOT_YOUR_CARD
from bot.dingtalk.routes import DINGTALK_CALLBACKS
from bot.handlers.clicks import UNKNOWN_BUTTON
from bot.wecom.client import WeComClient
from bot.wecom.processing import NOT_YOUR_CARD
from bot.wecom.routes import WECOM_CALLBACKS
from bot.wecom.sender import WeComSender
from core.access import ActionKind
from core.ticket import Ticket
from emulator.dingtalk import DingTalkEmulator, send_robot_message
from emulator.wecom import (
    WeComEmulator,
    send_callback,
    template_card_event_xml,
    text_message_xml,
)
from store.tables import delivery
from tests.fakes import FakeClock
from tests.matrix import expected
from tests.matrix.changes import check_change
from tests.matrix.probe import Probe, Seen
from tests.matrix.scenario import (
    A_APPROVE,
    CONFIG,
    DINGTALK_STAFF_IDS,
    HANDLER_NOW,
    HANDLER_OLD,
    STATE_A,
    STATE_B,
    WECOM_USERIDS,
    Scenario,
    matrix_runtime,
)
from tests.matrix.tally import backend_of, tally

pytestmark = pytest.mark.asyncio(loop_scope="module")

# test-only credentials of the emulated platforms
CORP, AGENT, SECRET = "wwmatrix00000001", 1000002, "matrix-app-secret"
TOKEN, AES_KEY = "matrix-callback-token", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
APP_KEY, APP_SECRET, ROBOT = "dingmatrixkey01", "ding-matrix-secret-xyz", "dingmatrixrobot01"
TEMPLATE, DING_CORP = "tpl-matrix.schema", "ding-matrix-corp"
WAIT = 30.0  # the bound of every wait (never a sleep)
PACE = 20  # WeCom messages to one person in the last (fake) minute before the clock moves on

PLATFORMS = ("wecom", "dingtalk")
BUTTON = {"approve": "同意", "reject": "驳回", "accept": "接单"}
MADE_UP = {"transfer": ActionKind.DELIVER, "consult": ActionKind.ADD_NODE}
COMMAND = {
    "show": "查看 {id}",
    "urge": "催办 {id} 请尽快处理",
    "comment": "评论 {id} 看过了（{role}）",
    "withdraw": "撤回 {id} 不需要了",
    "approve": "同意 {id} 可以",
    "reject": "驳回 {id} 不行",
}
CELLS = [
    (platform, surface, action, role, ok)
    for platform in PLATFORMS
    for surface in ("command", "click")
    for action, role, ok in expected.cells(surface)
]
IDS = [f"{p}-{'cmd' if s == 'command' else s}-{a}-{r}" for p, s, a, r, _ in CELLS]
EDITS = [
    (platform, edit, role)
    for platform in PLATFORMS
    for edit, role in (
        ("edited_ticket", HANDLER_NOW),
        ("edited_transition", HANDLER_NOW),
        ("stale_card", HANDLER_OLD),
    )
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def emulator_users() -> list[dict[str, Any]]:
    org = yaml.safe_load((CONFIG / "org.yaml").read_text(encoding="utf-8"))
    users: list[dict[str, Any]] = org["users"]
    return users


async def no_sleep(_: float) -> None:
    """The card sender's WeCom client pauses between its own retries: not at all here."""


@dataclass
class Chat:
    wecom: WeComEmulator
    ding: DingTalkEmulator
    client: TestClient[web.Request, web.Application]
    app: web.Application
    clock: FakeClock
    probe: Probe
    scenario: Scenario
    backend: str
    shared: dict[str, Ticket] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(70001))

    # ------------------------------------------------------------------ waiting for the app

    async def next_due(self) -> datetime | None:
        c = delivery.c
        sends = select(func.min(c.due_at)).where(c.status == "pending")
        closes = select(func.min(c.close_due_at)).where(
            c.status == "sent", c.close_due_at.is_not(None), c.closed_at.is_(None)
        )
        async with self.probe.db.read() as conn:
            found = [(await conn.execute(q)).scalar_one() for q in (sends, closes)]
        times = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in found if t is not None]
        return min(times, default=None)

    async def settle(self) -> None:
        """Every callback processed, then every due send and card update done (the fake clock is
        moved on to a send the rate limits put off). Neither platform dropped a message."""
        async with asyncio.timeout(WAIT):
            for _ in range(50):
                while tasks := set(self.app[WECOM_CALLBACKS].tasks) | set(self.app[DINGTALK_CALLBACKS].tasks):
                    await asyncio.gather(*tasks, return_exceptions=True)
                await self.app[NOTIFIER].drain()
                due = await self.next_due()
                if due is None:
                    assert not self.wecom.records.drops, self.wecom.records.drops
                    assert not self.ding.records.drops, self.ding.records.drops
                    return
                self.clock.current = max(self.clock.current, due)
        raise AssertionError("the notifier still has due work")

    def pace(self) -> None:
        """A minute passes (on the fake clock) before anyone nears WeCom's 30 messages a minute:
        chat replies and cards go through two WeCom clients here, whose limits do not add up."""
        since = self.clock.current - timedelta(minutes=1)
        recent = Counter(u for m in self.wecom.records.messages if m.at > since for u in m.recipients)
        if recent and max(recent.values()) >= PACE:
            self.clock.advance(seconds=61)

    async def fresh(self, kind: str) -> Ticket:
        ticket = await self.scenario.build(kind)
        await self.settle()
        return ticket

    # ------------------------------------------------------------------ chat messages

    async def say(self, platform: str, role: str, text: str) -> str:
        """`role` sends `text` to the bot on `platform`; the one reply they get."""
        if platform == "wecom":
            userid = WECOM_USERIDS[role]
            before = len(self.wecom.records.messages)
            xml = text_message_xml(
                corp_id=CORP,
                from_user=userid,
                content=text,
                msg_id=next(self.ids),
                agent_id=AGENT,
                create_time=1,
            )
            got = await send_callback(
                self.client.session,
                self.url("/wecom/callback"),
                xml,
                token=TOKEN,
                aes_key=AES_KEY,
                corp_id=CORP,
            )
            assert got.status == 200, got
            await self.settle()
            return self._one(self.wecom_texts(userid, before))
        staff = DINGTALK_STAFF_IDS[role]
        posts = len(self.ding.records.webhook_posts)
        body = self.ding.robot_text_message(text, sender=staff)
        answer = await send_robot_message(
            self.client.session, self.url("/dingtalk/robot"), body, app_secret=APP_SECRET
        )
        assert answer.status == 200, answer
        await self.settle()
        return self._one([p.text for p in self.ding.records.webhook_posts[posts:]])

    @staticmethod
    def _one(replies: list[str]) -> str:
        assert len(replies) == 1, replies
        return replies[0]

    def wecom_texts(self, userid: str, since: int) -> list[str]:
        """The texts `userid` was sent (and got) since message `since`."""
        return [
            str(m.body["text"]["content"])
            for m in self.wecom.records.messages[since:]
            if m.msgtype == "text" and userid in m.delivered_to
        ]

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    # ------------------------------------------------------------------ cards and clicks

    def card(self, platform: str, owner: str, ticket_id: int) -> Card:
        """The latest card with buttons sent to `owner` about the ticket (as it was sent)."""
        found: list[Card] = []
        if platform == "wecom":
            for m in self.wecom.records.messages:
                tc = m.body.get("template_card", {}) if m.msgtype == "template_card" else {}
                if (
                    WECOM_USERIDS[owner] in m.recipients
                    and str(tc.get("task_id", "")).startswith(f"tb_{ticket_id}_")
                    and tc.get("button_list")
                ):
                    buttons = {b["text"]: b["key"] for b in tc["button_list"]}
                    found.append(Card(platform, owner, m.msgid, tc["task_id"], buttons))
        else:
            space = f"dtv1.card//IM_ROBOT.{DINGTALK_STAFF_IDS[owner]}"
            for c in self.ding.records.cards:
                params = c.param_map
                if c.open_space_id == space and c.out_track_id.startswith(f"tb_{ticket_id}_"):
                    buttons = {
                        params[f"btn{n}_text"]: params[f"btn{n}_action"]
                        for n in range(1, 7)
                        if params.get(f"btn{n}_text") and params.get(f"btn{n}_action")
                    }
                    if buttons:
                        found.append(Card(platform, owner, c.out_track_id, c.out_track_id, buttons))
        assert found, f"no {platform} card with buttons for {owner} about ticket {ticket_id}"
        return found[-1]

    def shows(self, card: Card) -> Any:
        """What a card shows now (WeCom: the updates it got; DingTalk: its parameters)."""
        if card.platform == "wecom":
            return [u.body for u in self.wecom.records.updates if u.msgid == card.ref]
        return self.ding.card_params(card.ref)

    async def click(self, role: str, card: Card, payload: str) -> list[str]:
        """`role` clicks a button of `card`, the button carrying `payload`, as the platform sends it;
        the texts the clicker was sent."""
        if card.platform == "wecom":
            userid = WECOM_USERIDS[role]
            before = len(self.wecom.records.messages)
            xml = template_card_event_xml(
                corp_id=CORP,
                from_user=userid,
                create_time=2,
                event_key=payload,
                task_id=card.task_id,
                response_code=self.wecom.issue_click_response_code(card.ref),
                agent_id=AGENT,
            )
            got = await send_callback(
                self.client.session,
                self.url("/wecom/callback"),
                xml,
                token=TOKEN,
                aes_key=AES_KEY,
                corp_id=CORP,
            )
            assert got.status == 200, got
            await self.settle()
            return self.wecom_texts(userid, before)
        staff = DINGTALK_STAFF_IDS[role]
        sends = len(self.ding.records.robot_sends)
        answer = await self.ding.click_card(
            self.client.session, card.ref, staff, action_id="btn1", params={"action": payload}, deadline=WAIT
        )
        assert answer.status == 200, answer
        await self.settle()
        return [
            str(s.msg_param.get("content", ""))
            for s in self.ding.records.robot_sends[sends:]
            if staff in s.user_ids
        ]


@dataclass(frozen=True)
class Card:
    """A card sent to `owner`: `ref` is its WeCom msgid or DingTalk outTrackId; `buttons` maps each
    button's label to its payload, as sent."""

    platform: str
    owner: str
    ref: str
    task_id: str
    buttons: dict[str, str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chat(database_url: str) -> AsyncIterator[Chat]:
    clock = FakeClock(datetime.now(UTC))
    users = emulator_users()
    wecom = WeComEmulator(
        corp_id=CORP,
        apps={AGENT: SECRET},
        clock=clock,
        org={
            "departments": [{"id": 1, "name": "总部", "parentid": 0}],
            "users": [{"userid": u["wecom_userid"], "name": u["alias"], "department": [1]} for u in users],
        },
    )
    ding = DingTalkEmulator(
        APP_KEY,
        APP_SECRET,
        ROBOT,
        clock,
        org={
            "departments": [{"dept_id": 1, "name": "总部"}],
            "users": [
                {"userid": u["dingtalk_staff_id"], "name": u["alias"], "dept_id_list": [1]} for u in users
            ],
        },
        corp_id=DING_CORP,
    )
    wecom_server = TestServer(wecom.app())
    ding_server = TestServer(ding.app())
    await wecom_server.start_server()
    await ding_server.start_server()
    wecom_base = str(wecom_server.make_url("")).rstrip("/")
    ding.base_url = str(ding_server.make_url("")).rstrip("/")
    port = free_port()
    env = {
        "TICKETBOT_WECOM_CORP_ID": CORP,
        "TICKETBOT_WECOM_AGENT_ID": str(AGENT),
        "TICKETBOT_WECOM_SECRET": SECRET,
        "TICKETBOT_WECOM_TOKEN": TOKEN,
        "TICKETBOT_WECOM_AES_KEY": AES_KEY,
        "TICKETBOT_WECOM_API_BASE": wecom_base,
        "TICKETBOT_DINGTALK_APP_KEY": APP_KEY,
        "TICKETBOT_DINGTALK_APP_SECRET": APP_SECRET,
        "TICKETBOT_DINGTALK_ROBOT_CODE": ROBOT,
        "TICKETBOT_DINGTALK_CARD_TEMPLATE_ID": TEMPLATE,
        "TICKETBOT_DINGTALK_API_BASE": ding.base_url,
        "TICKETBOT_DINGTALK_OAPI_BASE": ding.base_url,
        "TICKETBOT_PUBLIC_URL": f"http://127.0.0.1:{port}",  # where DingTalk posts card clicks
        "TICKETBOT_DUE_WORK_SECONDS": "0",
    }
    runtime = await matrix_runtime(database_url, env)
    session = aiohttp.ClientSession()
    # the card sender's WeCom client counts its 30 messages a minute on the fake clock
    cards = WeComClient(
        session,
        api_base=wecom_base,
        corp_id=CORP,
        corp_secret=SECRET,
        agent_id=AGENT,
        clock=clock,
        sleep=no_sleep,
    )
    app = await create_app(
        runtime.settings, runtime, senders={"wecom": WeComSender(cards, AGENT)}, clock=clock
    )
    client: TestClient[web.Request, web.Application] = TestClient(
        TestServer(app, host="127.0.0.1", port=port)
    )
    await client.start_server()
    try:
        await app[NOTIFIER].stop()  # the tests drain it, on the fake clock
        stack = Chat(
            wecom,
            ding,
            client,
            app,
            clock,
            Probe(runtime.db),
            Scenario(runtime.service),
            backend_of(database_url),
        )
        await stack.settle()
        for kind in ("at_b", "accept", "at_a"):
            stack.shared[kind] = await stack.fresh(kind)
        # handler_old got the card of 初审 before he approved it (through the engine): a stale card
        stale = await stack.fresh("at_a")
        stack.shared["stale"] = await stack.scenario.handled(stale, HANDLER_OLD, A_APPROVE)
        await stack.settle()
        yield stack
    finally:
        await client.close()
        await session.close()
        await ding_server.close()
        await wecom_server.close()


# ------------------------------------------------------------------------------------- checks

NOT_FOUND = re.compile(r"找不到工单 \d+，或你无权查看。")
REFUSED = ("未执行：", "你现在不能", "已经有人处理过了：")


def assert_refusal_reply(role: str, reply: str) -> None:
    """A refused command is answered with why; a ticket one may not see is just "not found"."""
    if role not in expected.VIEWERS:
        assert NOT_FOUND.fullmatch(reply), reply
    else:
        assert reply.startswith(REFUSED) and len(reply) > 10, reply


def assert_done_reply(action: str, ticket: Ticket, reply: str) -> None:
    prefixes = {
        "show": f"{ticket.sn} {ticket.title}",
        "urge": "已催办 当前处理人",
        "comment": "评论已添加。",
        "withdraw": "工单已撤回。",
        "approve": f"已同意工单 {ticket.sn}",
        "reject": f"已驳回工单 {ticket.sn}",
    }
    assert reply.startswith(prefixes[action]), reply


def made_up(ticket: Ticket, kind: ActionKind) -> str:
    """A button payload for an action the product never puts on a card."""
    return encode_action(ticket.id, ticket.state_id, kind, 0, "x1")


# -------------------------------------------------------------------------------------- the cells


@pytest.mark.parametrize(("platform", "surface", "action", "role", "ok"), CELLS, ids=IDS)
async def test_cell(chat: Chat, platform: str, surface: str, action: str, role: str, ok: bool) -> None:
    chat.pace()
    table_action = expected.table_action(surface, action)
    kind = expected.ticket_of(table_action)
    ticket = await chat.fresh(kind) if ok and action != "show" else chat.shared[kind]
    card = chat.card(platform, HANDLER_NOW, ticket.id)
    card_before = chat.shows(card)
    before = await chat.probe.seen(ticket.id)
    if surface == "command":
        reply = await chat.say(platform, role, COMMAND[action].format(id=ticket.id, role=role))
        after = await chat.probe.seen(ticket.id)
        if ok:
            assert_done_reply(action, ticket, reply)
            if action == "urge":
                # handler_now's urge card on each platform
                assert after.counts[3] == before.counts[3] + len(PLATFORMS), "the urge cards were planned"
            check_change(table_action, role, before.ticket, after.ticket, after.logs[len(before.logs) :])
        else:
            assert_refusal_reply(role, reply)
            assert after == before, "a refused command changed something"
    else:
        label = BUTTON.get(action)
        payload = card.buttons[label] if label else made_up(ticket, MADE_UP[action])
        texts = await chat.click(role, card, payload)
        after = await chat.probe.seen(ticket.id)
        if ok:
            assert texts == [], texts
            check_change(table_action, role, before.ticket, after.ticket, after.logs[len(before.logs) :])
            assert chat.shows(card) != card_before, "the clicked card shows the result"
        else:
            not_yours = NOT_YOUR_CARD if platform == "wecom" else DINGTALK_NOT_YOUR_CARD
            want = UNKNOWN_BUTTON if label is None else not_yours
            assert texts == [want], texts
            assert after == before, "a refused click changed something"
            assert chat.shows(card) == card_before, "the refused click closed the card"
    tally(__name__, chat.backend, surface, ok)


@pytest.mark.parametrize(("platform", "edit", "role"), EDITS, ids=[f"{p}-click-{e}-{r}" for p, e, r in EDITS])
async def test_special_click(chat: Chat, platform: str, edit: str, role: str) -> None:
    """Clicks on a card of one's own that are refused all the same, changing nothing:

    - edited_ticket: handler_now's 同意 payload edited to another ticket (one waiting for
      handler_old in 初审): the button is no longer valid;
    - edited_transition: ... edited to a transition of another state: not done, and why;
    - stale_card: handler_old's own card of 初审, clicked after the ticket moved on to 复核: the card
      is shown who decided (no text)."""
    chat.pace()
    mine, other = chat.shared["stale" if edit == "stale_card" else "at_b"], chat.shared["at_a"]
    card = chat.card(platform, role, mine.id)
    action = decode_action(card.buttons["同意"])
    assert action is not None and action.ticket_id == mine.id
    if edit == "edited_ticket":
        payload = encode_action(other.id, STATE_A, ActionKind.TRANSITION, A_APPROVE, action.nonce)
    elif edit == "edited_transition":
        payload = encode_action(mine.id, STATE_B, ActionKind.TRANSITION, A_APPROVE, action.nonce)
    else:
        assert (action.state_id, action.transition_id) == (STATE_A, A_APPROVE)
        payload = card.buttons["同意"]
    card_before = chat.shows(card)
    before: list[Seen] = [await chat.probe.seen(t.id) for t in (mine, other)]
    texts = await chat.click(role, card, payload)
    assert [await chat.probe.seen(t.id) for t in (mine, other)] == before, "a refused click changed something"
    if edit == "edited_ticket":
        assert texts == [UNKNOWN_BUTTON], texts
        assert chat.shows(card) == card_before, "an edited click closed the card"
    elif edit == "edited_transition":
        (text,) = texts
        assert text.startswith("未执行：") and f"transition {A_APPROVE} is not available" in text, text
        assert chat.shows(card) == card_before, "an edited click closed the card"
    else:
        assert texts == [], texts
        shown = chat.shows(card)  # "已同意 · 上一步处理人 · <time>"
        result = shown[-1]["template_card"]["replace_text"] if platform == "wecom" else shown["result_text"]
        assert result.startswith("已同意 · 上一步处理人"), shown
    tally(__name__, chat.backend, "click", False)
