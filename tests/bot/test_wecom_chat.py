"""Chat end to end through the real app (WeCom settings on, SQLite and PostgreSQL): the emulator
sends an encrypted text callback, the app answers it from the inbox in the background, and the
reply reaches the emulator's message API (which stands in for api.weixin / qyapi)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import NOTIFIER, RUNTIME, create_app
from bot.wecom.callback import InboundEvent
from bot.wecom.client import RateLimited
from bot.wecom.processing import INACTIVE, NOT_IN_DIRECTORY, WeComChat, make_wecom_processor
from bot.wecom.routes import WECOM_CALLBACKS
from config.settings import load_settings
from core.org import Org, User
from emulator.wecom import (
    SentMessage,
    SystemClock,
    WeComEmulator,
    send_callback,
    template_card_event_xml,
    text_message_xml,
)
from store.queries import SqlTicketQueries

CONFIG = Path(__file__).resolve().parents[2] / "config"
CORP = "wwcorp0123456789"
AGENT = 1000002
SECRET = "app-secret"
TOKEN = "callback-token-77"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WAIT = 10.0  # an upper bound for awaiting the app's tasks, never a sleep


def emulator_org() -> dict[str, list[dict[str, Any]]]:
    """The shipped directory's WeCom members, plus one member the bot's directory does not know."""
    org = yaml.safe_load((CONFIG / "org.yaml").read_text(encoding="utf-8"))
    users = [
        {"userid": u["wecom_userid"], "name": u["alias"], "department": [1]}
        for u in org["users"]
        if u.get("wecom_userid")
    ]
    users.append({"userid": "Stranger", "name": "路人", "department": [1]})
    users.append({"userid": "zhangwei", "name": "张伟 (lower-case id)", "department": [1]})
    return {"departments": [{"id": 1, "name": "总部", "parentid": 0}], "users": users}


@dataclass
class Chat:
    emulator: WeComEmulator
    client: TestClient[web.Request, web.Application]
    app: web.Application
    ids: itertools.count[int]

    async def say(self, userid: str, content: str) -> str:
        """Send `content` as `userid`, wait for the app to process it, return the text it replied."""
        before = len(self.emulator.records.messages)
        xml = text_message_xml(
            corp_id=CORP,
            from_user=userid,
            content=content,
            msg_id=next(self.ids),
            agent_id=AGENT,
            create_time=1700000000,
        )
        url = str(self.client.make_url("/wecom/callback"))
        status, _ = await send_callback(
            self.client.session, url, xml, token=TOKEN, aes_key=AES_KEY, corp_id=CORP
        )
        assert status == 200
        await self.settle()
        new: list[SentMessage] = [
            m
            for m in self.emulator.records.messages[before:]
            if m.msgtype == "text" and userid in m.recipients
        ]
        assert len(new) == 1, new
        (sent,) = new
        assert sent.msgtype == "text" and sent.delivered_to == (userid,)
        content_sent: str = sent.body["text"]["content"]
        return content_sent

    async def settle(self) -> None:
        """Wait for the callbacks being processed, then for every card they caused to go out."""
        async with asyncio.timeout(WAIT):
            while tasks := set(self.app[WECOM_CALLBACKS].tasks):
                await asyncio.gather(*tasks, return_exceptions=True)
            await self.app[NOTIFIER].drain()

    def cards(self, userid: str) -> list[SentMessage]:
        """Template cards sent to `userid`, oldest first."""
        return [
            m
            for m in self.emulator.records.messages
            if m.msgtype == "template_card" and userid in m.recipients
        ]

    async def click(
        self,
        userid: str,
        card: SentMessage,
        button: str,
        *,
        create_time: int = 1700000100,
        edit: Callable[[str], str] | None = None,
    ) -> None:
        """Click the button labelled `button` on `card` as `userid`, as WeCom sends it; then settle.
        `edit` changes the button's key on the way (a forged payload)."""
        tc = card.body["template_card"]
        keys = [b["key"] for b in tc.get("button_list", []) if b["text"] == button]
        assert keys, f"no button {button!r} on {tc.get('button_list')}"
        xml = template_card_event_xml(
            corp_id=CORP,
            from_user=userid,
            create_time=create_time,
            event_key=keys[0] if edit is None else edit(keys[0]),
            task_id=tc["task_id"],
            response_code=self.emulator.issue_click_response_code(card.msgid),
            agent_id=AGENT,
        )
        url = str(self.client.make_url("/wecom/callback"))
        status, _ = await send_callback(
            self.client.session, url, xml, token=TOKEN, aes_key=AES_KEY, corp_id=CORP
        )
        assert status == 200
        await self.settle()


@pytest.fixture
async def chat(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Chat:
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=SystemClock(), org=emulator_org())
    server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
    env = {
        "TICKETBOT_WECOM_CORP_ID": CORP,
        "TICKETBOT_WECOM_AGENT_ID": str(AGENT),
        "TICKETBOT_WECOM_SECRET": SECRET,
        "TICKETBOT_WECOM_TOKEN": TOKEN,
        "TICKETBOT_WECOM_AES_KEY": AES_KEY,
        "TICKETBOT_WECOM_API_BASE": str(server.make_url("")).rstrip("/"),
        "TICKETBOT_PUBLIC_URL": "https://bot.example.com",
    }
    settings = load_settings(env=env, database_url=database_url, config_dir=CONFIG)
    app = await create_app(settings)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    result = Chat(emulator, client, app, itertools.count(9001))
    await result.settle()  # the start-up recovery
    return result


async def test_help_is_answered_in_chat(chat: Chat) -> None:
    reply = await chat.say("LiuYang", "帮助")
    assert "可以这样跟我说" in reply and "1. 请假申请" in reply


async def test_userids_match_case_insensitively(chat: Chat) -> None:
    reply = await chat.say("zhangwei", "help")  # the directory has ZhangWei
    assert reply.startswith("You can say:")


async def test_an_unknown_member_is_told_to_ask_the_administrator(chat: Chat) -> None:
    assert await chat.say("Stranger", "帮助") == NOT_IN_DIRECTORY


async def test_create_by_chat_then_approve_by_chat(chat: Chat) -> None:
    reply = await chat.say(
        "LiuYang", "发起 请假申请 start_date=2024-05-06 end_date=2024-05-07 days=2 reason=家里有事"
    )
    assert reply.startswith("已发起工单"), reply
    ticket_id = int(reply.rsplit("/tickets/", 1)[1].split("?")[0])
    queries = SqlTicketQueries(chat.app[RUNTIME].db)
    ticket = await queries.get_ticket(ticket_id)
    assert ticket is not None and ticket.creator == "liuyang" and ticket.handlers == ("wangqiang",)

    assert ticket.sn in await chat.say("WangQiang", "待办")
    assert (await chat.say("WangQiang", f"同意 {ticket_id}")).startswith(f"已同意工单 {ticket.sn}")
    moved = await queries.get_ticket(ticket_id)
    assert moved is not None and moved.state_id == 104


# ---------------------------------------------------------------- the processor alone, with fakes


class FakeDirectory:
    def __init__(self, *users: User) -> None:
        self._org = Org.build(users)

    async def org(self) -> Org:
        return self._org


class FakeConversation:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.keys: list[str] = []

    async def reply_to(
        self, username: str, text: str, platform: str = "chat", *, request_key: str = ""
    ) -> str:
        self.asked.append((username, text))
        self.keys.append(request_key)
        return f"reply to {username}"


class FakeClient:
    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[tuple[str, str]] = []
        self.error = error

    async def send_text(self, touser: str, content: str) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append((touser, content))


def _event(msg_type: str = "text", from_user: str = "LiNa", content: str = "帮助") -> InboundEvent:
    return InboundEvent(
        dedupe_key="msg:1", msg_type=msg_type, from_user=from_user, content=content, msg_id="1", raw="<xml/>"
    )


def _processor(conv: FakeConversation, client: FakeClient, *users: User) -> Any:
    chat = WeComChat(
        conversation=cast(Any, conv),
        client=cast(Any, client),
        directory=FakeDirectory(*users),
        service=cast(Any, None),  # text messages never reach the engine directly
        notifier=None,
        clock=SystemClock(),
    )
    return make_wecom_processor(chat)


async def test_processor_ignores_events_and_other_message_types() -> None:
    conv, client = FakeConversation(), FakeClient()
    on_event = _processor(conv, client, User("lina", wecom_userid="LiNa"))
    await on_event(_event(msg_type="event"))
    await on_event(_event(msg_type="image"))
    assert conv.asked == [] and client.sent == []


async def test_processor_answers_known_inactive_and_unknown_members() -> None:
    conv, client = FakeConversation(), FakeClient()
    on_event = _processor(
        conv, client, User("lina", wecom_userid="LiNa"), User("gone", wecom_userid="Gone", is_active=False)
    )
    await on_event(_event(from_user="lina"))
    await on_event(_event(from_user="Gone"))
    await on_event(_event(from_user="Nobody"))
    assert conv.asked == [("lina", "帮助")]
    assert conv.keys == ["wecom:1"]  # the MsgId names the message: a second run creates nothing more
    assert client.sent == [("lina", "reply to lina"), ("Gone", INACTIVE), ("Nobody", NOT_IN_DIRECTORY)]


async def test_a_rate_limited_reply_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    client = FakeClient(RateLimited(42.0, ["LiNa"], "30 messages in the last minute"))
    on_event = _processor(FakeConversation(), client, User("lina", wecom_userid="LiNa"))
    with caplog.at_level(logging.WARNING, logger="ticketbot.wecom.processing"):
        await on_event(_event())
    assert [r.getMessage() for r in caplog.records] == ["wecom reply not sent: recipient rate limit"]
