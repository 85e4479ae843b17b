"""The emulator's web chat page over HTTP, driving the real ticketbot app (WeCom and DingTalk on,
SQLite and PostgreSQL) through the emulators: what a person sends from the page reaches the bot as
the platform's real callback, the cards the bot sends appear in the right timelines, a click from
the page decides the ticket and greys the card out, live over Server-Sent Events."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import RUNTIME, create_app
from config.settings import load_settings
from core.ticket import Ticket
from emulator.__main__ import build_app, main, parser
from emulator.chat import ChatPage, DingTalkBot, WeComBot
from emulator.dingtalk import DingTalkEmulator
from emulator.wecom import SystemClock, WeComEmulator
from store.queries import SqlTicketQueries
from tests.bot import test_dingtalk_cards as dt
from tests.bot import test_wecom_chat as wc
from tests.bot.test_two_platforms import Both

LEAVE = "发起 请假申请 start_date=2024-05-06 end_date=2024-05-07 days=2 reason=家里有事"
WAIT = 10.0


@dataclass
class Chat:
    """The chat page's server (`client`) in front of the real bot (`both`)."""

    client: TestClient[web.Request, web.Application]
    page: ChatPage
    both: Both

    async def post(self, path: str, body: Any, *, expect: int = 200) -> dict[str, Any]:
        async with self.client.post(path, json=body) as resp:
            data: dict[str, Any] = await resp.json()
            assert resp.status == expect, (resp.status, data)
            return data

    async def send(self, platform: str, userid: str, text: str, *, expect: int = 200) -> dict[str, Any]:
        data = await self.post(
            "/_chat/send", {"platform": platform, "userid": userid, "text": text}, expect=expect
        )
        await self.both.settle()
        return data

    async def click(
        self, platform: str, userid: str, card_id: str, key: str, *, expect: int = 200
    ) -> dict[str, Any]:
        body = {"platform": platform, "userid": userid, "card_id": card_id, "key": key}
        data = await self.post("/_chat/click", body, expect=expect)
        await self.both.settle()
        return data

    async def timeline(self, platform: str, userid: str) -> list[dict[str, Any]]:
        async with self.client.get(
            "/_chat/timeline", params={"platform": platform, "userid": userid}
        ) as resp:
            assert resp.status == 200
            entries: list[dict[str, Any]] = (await resp.json())["entries"]
            return entries

    async def cards(self, platform: str, userid: str) -> list[dict[str, Any]]:
        return [e for e in await self.timeline(platform, userid) if e["kind"] == "card"]

    async def ticket(self, ticket_id: int) -> Ticket:
        found = await SqlTicketQueries(self.both.wecom.app[RUNTIME].db).get_ticket(ticket_id)
        assert found is not None
        return found


def key_of(card: dict[str, Any], label: str) -> str:
    keys: list[str] = [b["key"] for b in card["card"]["buttons"] if b["text"] == label]
    assert keys, f"no button {label!r} on {card['card']['buttons']}"
    return keys[0]


def ticket_id_of(reply: str) -> int:
    found = re.search(r"/tickets/(\d+)", reply)
    assert found, reply
    return int(found.group(1))


async def bot_replies(chat: Chat, platform: str, userid: str) -> list[str]:
    return [
        e["text"]["text"]
        for e in await chat.timeline(platform, userid)
        if e["kind"] == "text" and e["direction"] == "in"
    ]


@pytest.fixture
async def chat(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Chat:
    wecom = WeComEmulator(
        corp_id=wc.CORP, apps={wc.AGENT: wc.SECRET}, clock=SystemClock(), org=wc.emulator_org()
    )
    wecom_server: TestServer = await aiohttp_server(wecom.app(), access_log=None)
    ding = DingTalkEmulator(
        dt.APP_KEY, dt.APP_SECRET, dt.ROBOT, SystemClock(), org=dt.emulator_org(), corp_id=dt.CORP
    )
    ding_server: TestServer = await aiohttp_server(ding.app(), access_log=None)
    ding.base_url = str(ding_server.make_url("")).rstrip("/")
    port = dt.free_port()
    env = {
        "TICKETBOT_WECOM_CORP_ID": wc.CORP,
        "TICKETBOT_WECOM_AGENT_ID": str(wc.AGENT),
        "TICKETBOT_WECOM_SECRET": wc.SECRET,
        "TICKETBOT_WECOM_TOKEN": wc.TOKEN,
        "TICKETBOT_WECOM_AES_KEY": wc.AES_KEY,
        "TICKETBOT_WECOM_API_BASE": str(wecom_server.make_url("")).rstrip("/"),
        "TICKETBOT_DINGTALK_APP_KEY": dt.APP_KEY,
        "TICKETBOT_DINGTALK_APP_SECRET": dt.APP_SECRET,
        "TICKETBOT_DINGTALK_ROBOT_CODE": dt.ROBOT,
        "TICKETBOT_DINGTALK_CARD_TEMPLATE_ID": dt.TEMPLATE,
        "TICKETBOT_DINGTALK_API_BASE": ding.base_url,
        "TICKETBOT_DINGTALK_OAPI_BASE": ding.base_url,
        "TICKETBOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    settings = load_settings(env=env, database_url=database_url, config_dir=wc.CONFIG)
    app = await create_app(settings)
    bot: TestClient[web.Request, web.Application] = await aiohttp_client(
        TestServer(app, host="127.0.0.1", port=port)
    )
    both = Both(wc.Chat(wecom, bot, app, itertools.count(9001)), dt.Ding(ding, bot, app))
    await both.settle()
    page = ChatPage(
        wecom=wecom,
        wecom_bot=WeComBot(str(bot.make_url("/wecom/callback")), wc.TOKEN, wc.AES_KEY),
        dingtalk=ding,
        dingtalk_bot=DingTalkBot(str(bot.make_url("/dingtalk/robot"))),
        poll=0.05,
    )
    chat_app = web.Application()
    page.add_routes(chat_app)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(chat_app)
    return Chat(client, page, both)


class Stream:
    """One open /_chat/events stream, read event by event."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self) -> tuple[str, dict[str, Any]]:
        """The next event (name, data); comments are skipped. AssertionError at the end of the stream."""
        event = ""
        async with asyncio.timeout(WAIT):
            while True:
                raw = await self.response.content.readline()
                assert raw, "the stream ended"
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: "):
                    return event, json.loads(line[len("data: ") :])

    async def until(self, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first "entry" event whose data satisfies `done`."""
        while True:
            event, data = await self.next()
            if event == "entry" and done(data):
                return data


@asynccontextmanager
async def open_stream(
    client: TestClient[web.Request, web.Application], platform: str, userid: str
) -> AsyncIterator[Stream]:
    async with client.get("/_chat/events", params={"platform": platform, "userid": userid}) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        yield Stream(resp)


# ---------------------------------------------------------------- the page


async def test_the_page_its_files_and_the_directory_are_served(chat: Chat) -> None:
    async with chat.client.get("/") as resp:
        html = await resp.text()
        assert resp.status == 200 and resp.content_type == "text/html"
    for testid in ("platform-picker", "person-picker", "message-input", "send-button"):
        assert f'data-testid="{testid}"' in html
    async with chat.client.get("/_chat/static/chat.js") as resp:
        js = await resp.text()
        assert resp.status == 200
    assert "innerHTML" not in js and 'emulator_wecom_user=" + encodeURIComponent' in js
    async with chat.client.get("/_chat/static/chat.css") as resp:
        assert resp.status == 200
    async with chat.client.get("/_chat/people") as resp:
        people = await resp.json()
    assert {"userid": "WangQiang", "name": "王强", "department": "总部"} in people["wecom"]
    assert {"userid": "staff0004", "name": "王强", "department": "总部"} in people["dingtalk"]


# ---------------------------------------------------------------- WeCom end to end


async def test_wecom_a_leave_request_from_the_page_is_approved_from_the_card(chat: Chat) -> None:
    sent = await chat.send("wecom", "LiuYang", LEAVE)
    assert sent["bot_status"] == 200
    assert (sent["entry"]["direction"], sent["entry"]["status"]) == ("out", "sent")
    mine, reply = await chat.timeline("wecom", "LiuYang")
    assert (mine["direction"], mine["text"]["text"]) == ("out", LEAVE)
    assert reply["direction"] == "in" and reply["text"]["text"].startswith("已发起工单"), reply
    ticket_id = ticket_id_of(reply["text"]["text"])

    (card,) = await chat.cards("wecom", "WangQiang")
    assert card["card"]["look"] == "wecom" and card["card"]["title"].startswith("请假申请"), card["card"]
    assert [b["text"] for b in card["card"]["buttons"]] == ["同意", "驳回"]
    assert f"/tickets/{ticket_id}" in card["card"]["links"][0]["url"]

    clicked = await chat.click("wecom", "WangQiang", card["card_id"], key_of(card, "同意"))
    assert clicked["bot_status"] == 200
    assert (await chat.ticket(ticket_id)).state_id == 104
    (card,) = await chat.cards("wecom", "WangQiang")
    assert card["card"]["result"].startswith("已同意 · 王强"), card["card"]
    assert card["card"]["buttons"] == [] and card["version"] > 1
    # the requester is told, and HR gets its 接单 cards
    notices = await chat.cards("wecom", "LiuYang")
    assert any("已同意 · 王强" in (n["card"]["sub_title"] or "") for n in notices), notices
    (hr,) = await chat.cards("wecom", "YangFan")
    assert [b["text"] for b in hr["card"]["buttons"]] == ["接单"]


async def test_a_click_by_someone_else_or_on_a_gone_button_is_refused_and_changes_nothing(chat: Chat) -> None:
    await chat.send("wecom", "LiuYang", LEAVE)
    ticket_id = ticket_id_of((await bot_replies(chat, "wecom", "LiuYang"))[0])
    (card,) = await chat.cards("wecom", "WangQiang")
    approve, reject = key_of(card, "同意"), key_of(card, "驳回")
    before = await chat.ticket(ticket_id)
    calls = len(chat.both.wecom.emulator.records.calls)

    refused = await chat.click("wecom", "LiuYang", card["card_id"], approve, expect=403)
    assert "not delivered to 'LiuYang'" in refused["error"]
    refused = await chat.click(
        "wecom", "WangQiang", card["card_id"], "t:1:s:1:a:transition:x:1:n:1", expect=409
    )
    assert "no button" in refused["error"]
    await chat.click("wecom", "WangQiang", "no-such-card", approve, expect=404)
    await chat.click("dingtalk", "staff0004", card["card_id"], approve, expect=404)  # a WeCom card
    after = await chat.ticket(ticket_id)
    assert (after.state_id, after.version) == (before.state_id, before.version)
    assert len(chat.both.wecom.emulator.records.calls) == calls  # no update went out either

    await chat.click("wecom", "WangQiang", card["card_id"], approve)
    decided = await chat.ticket(ticket_id)
    stale = await chat.click("wecom", "WangQiang", card["card_id"], reject, expect=409)
    assert stale["entry"]["card"]["result"].startswith("已同意 · 王强")
    again = await chat.ticket(ticket_id)
    assert (again.state_id, again.version) == (decided.state_id, decided.version)


async def test_the_event_stream_shows_each_person_their_own_timeline_live(chat: Chat) -> None:
    async with (
        open_stream(chat.client, "wecom", "WangQiang") as wang,
        open_stream(chat.client, "wecom", "LiuYang") as liu,
    ):
        assert await wang.next() == ("snapshot", {"entries": []})
        assert await liu.next() == ("snapshot", {"entries": []})
        await chat.send("wecom", "LiuYang", LEAVE)
        mine = await liu.until(lambda e: e["direction"] == "out")
        assert mine["text"]["text"] == LEAVE
        reply = await liu.until(lambda e: e["direction"] == "in")
        assert reply["text"]["text"].startswith("已发起工单")
        event, card = await wang.next()  # his card, nothing of LiuYang's
        assert event == "entry" and card["kind"] == "card" and card["userid"] == "WangQiang"
        await chat.click("wecom", "WangQiang", card["card_id"], key_of(card, "同意"))
        updated = await wang.until(lambda e: e["id"] == card["id"] and e["card"]["result"] is not None)
        assert updated["card"]["result"].startswith("已同意 · 王强") and updated["card"]["buttons"] == []
        assert updated["version"] > card["version"]
    # a new tab gets the whole timeline in its snapshot
    async with open_stream(chat.client, "wecom", "WangQiang") as again:
        event, data = await again.next()
        assert event == "snapshot" and [e["id"] for e in data["entries"]] == [card["id"]]
        assert data["entries"][0]["card"]["result"].startswith("已同意 · 王强")


# ---------------------------------------------------------------- DingTalk end to end


async def test_dingtalk_a_leave_request_from_the_page_is_approved_from_the_card(chat: Chat) -> None:
    sent = await chat.send("dingtalk", "staff0005", dt.LEAVE)
    assert sent["bot_status"] == 200
    (reply,) = await bot_replies(chat, "dingtalk", "staff0005")  # through the session webhook
    assert reply.startswith("已发起工单"), reply
    ticket_id = ticket_id_of(reply)
    (card,) = await chat.cards("dingtalk", "staff0004")
    assert card["card"]["look"] == "dingtalk" and card["card"]["card_type"] == "interactive"
    assert [b["text"] for b in card["card"]["buttons"]] == ["同意", "驳回"]
    assert {r["key"]: r["value"] for r in card["card"]["rows"]}["申请人"] == "刘洋"

    approve = key_of(card, "同意")
    await chat.click("dingtalk", "staff0005", card["card_id"], approve, expect=403)
    clicked = await chat.click("dingtalk", "staff0004", card["card_id"], approve)
    # the bot's answer to the click carried the card's new state: shown at once
    assert clicked["entry"]["card"]["result"].startswith("已同意 · 王强")
    assert (await chat.ticket(ticket_id)).state_id == 104
    (card,) = await chat.cards("dingtalk", "staff0004")
    assert card["card"]["buttons"] == [] and card["card"]["result"].startswith("已同意 · 王强")
    (notice,) = await chat.cards("dingtalk", "staff0005")
    assert notice["card"]["result"] == "已同意 · 王强"
    await chat.click("dingtalk", "staff0004", card["card_id"], approve, expect=409)  # clicked twice


# ---------------------------------------------------------------- failures and bad input


async def test_a_bot_that_refuses_or_cannot_be_reached_gives_502_and_a_failed_message(chat: Chat) -> None:
    wrong = ChatPage(
        wecom=chat.both.wecom.emulator,
        wecom_bot=WeComBot(
            str(chat.both.wecom.client.make_url("/wecom/callback")), "wrong-token", wc.AES_KEY
        ),
        dingtalk=chat.both.ding.emulator,
        dingtalk_bot=DingTalkBot(f"http://127.0.0.1:{dt.free_port()}/dingtalk/robot"),  # nobody listens
    )
    app = web.Application()
    wrong.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        async with client.post(
            "/_chat/send", json={"platform": "wecom", "userid": "LiNa", "text": "帮助"}
        ) as resp:
            data = await resp.json()
            assert resp.status == 502 and data["bot_status"] == 403 and "HTTP 403" in data["error"]
        assert data["entry"]["status"] == "failed"
        async with client.post(
            "/_chat/send", json={"platform": "dingtalk", "userid": "staff0003", "text": "帮助"}
        ) as resp:
            data = await resp.json()
            assert resp.status == 502 and "could not be reached" in data["error"], data
        (entry,) = wrong.timeline.entries("dingtalk", "staff0003")
        assert entry.status == "failed" and entry.error == data["error"]
    await chat.both.settle()
    assert chat.both.ding.emulator.records.webhook_posts == []


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/_chat/send", "not json", 400, "JSON object"),
        ("/_chat/send", [1], 400, "JSON object"),
        ("/_chat/send", {"platform": "wechat", "userid": "LiNa", "text": "hi"}, 400, "unknown platform"),
        ("/_chat/send", {"platform": "wecom", "userid": "", "text": "hi"}, 400, "userid is required"),
        ("/_chat/send", {"platform": "wecom", "userid": "Nobody", "text": "hi"}, 404, "not a member"),
        ("/_chat/send", {"platform": "wecom", "userid": "LiNa", "text": "  "}, 400, "text is required"),
        ("/_chat/send", {"platform": "wecom", "userid": "LiNa", "text": "x" * 2049}, 400, "over 2048"),
        ("/_chat/click", {"platform": "wecom", "userid": "LiNa", "card_id": "m1"}, 400, "key is required"),
        pytest.param("/_chat/send", "[" * 100_000, 400, "JSON object", id="nested-too-deep"),
        ("/_chat/send", {"platform": "wecom", "userid": "LiNa", "text": "hi \ud800"}, 400, "surrogate"),
        ("/_chat/send", {"platform": "dingtalk", "userid": "staff0003", "text": "\udfff"}, 400, "surrogate"),
        (
            "/_chat/click",
            {"platform": "wecom", "userid": "LiNa", "card_id": "m1", "key": "\ud800"},
            400,
            "surrogate",
        ),
        (
            "/_chat/click",
            {"platform": "dingtalk", "userid": "staff0003", "card_id": "c", "key": "k"},
            404,
            "no card",
        ),
    ],
)
async def test_bad_input_is_a_clear_4xx(chat: Chat, path: str, body: Any, status: int, error: str) -> None:
    raw = body if isinstance(body, str) else json.dumps(body)
    async with chat.client.post(path, data=raw) as resp:
        data = await resp.json()
        assert resp.status == status and error in data["error"], data
    assert chat.page.timeline.entries("wecom", "LiNa") == []


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Type": "application/json; charset=no-such-charset"}, b"{}", 400),
        ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"\x1f\x8b not gzip", 400),
        ({"Content-Type": "application/json"}, b"\xff\xfe{}", 400),
    ],
)
async def test_unreadable_bodies_are_a_clear_4xx(
    chat: Chat, headers: dict[str, str], body: bytes, status: int
) -> None:
    async with chat.client.post("/_chat/send", data=body, headers=headers) as resp:
        data = await resp.json()
        assert resp.status == status and "JSON object" in data["error"], data
    assert chat.page.timeline.entries("wecom", "LiNa") == []


async def test_bad_queries_are_a_clear_4xx(chat: Chat) -> None:
    for path, params, status in [
        ("/_chat/events", {}, 400),
        ("/_chat/events", {"platform": "wecom", "userid": "Nobody"}, 404),
        ("/_chat/timeline", {"platform": "dingtalk"}, 400),
    ]:
        async with chat.client.get(path, params=params) as resp:
            assert resp.status == status and "error" in await resp.json()


# ---------------------------------------------------------------- streams: heartbeat, disconnect, shutdown


def idle_page(**kw: Any) -> ChatPage:
    """A page whose bot is never called."""
    wecom = WeComEmulator(
        corp_id=wc.CORP, apps={wc.AGENT: wc.SECRET}, clock=SystemClock(), org=wc.emulator_org()
    )
    return ChatPage(
        wecom=wecom, wecom_bot=WeComBot("http://127.0.0.1:9/wecom/callback", "t", wc.AES_KEY), **kw
    )


async def test_an_idle_stream_gets_heartbeats_and_is_dropped_when_its_client_goes() -> None:
    page = idle_page(heartbeat=0.05, poll=0.05)
    app = web.Application()
    page.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        async with client.get("/_chat/events", params={"platform": "wecom", "userid": "LiNa"}) as resp:
            async with asyncio.timeout(WAIT):
                lines = [await resp.content.readline() for _ in range(4)]  # retry, blank, event, data
                assert lines[2] == b"event: snapshot\n"
                while (line := await resp.content.readline()) == b"\n":
                    pass
                assert line == b": heartbeat\n"
            (sub,) = page.timeline.subscriptions("wecom", "LiNa")
        async with asyncio.timeout(WAIT):
            await sub.ended.wait()  # the client went away: the subscriber is removed
        assert page.timeline.subscriptions("wecom", "LiNa") == []


async def test_the_server_stops_at_once_with_open_streams() -> None:
    page = idle_page()
    app = web.Application()
    page.add_routes(app)
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        streams = [
            await session.get(server.make_url("/_chat/events"), params={"platform": "wecom", "userid": who})
            for who in ("LiNa", "WangQiang", "LiNa")
        ]
        for stream in streams:
            async with asyncio.timeout(WAIT):
                while not (await stream.content.readline()).startswith(b"data: "):
                    pass
        assert len(page.timeline.subscriptions("wecom", "LiNa")) == 2
        async with asyncio.timeout(2):
            await server.close()
        for stream in streams:
            async with asyncio.timeout(2):
                assert (await stream.content.read()).strip() == b""  # ended by the server
            stream.release()
    assert page.timeline.subscriptions("wecom", "LiNa") == []


def test_a_page_needs_an_emulator_and_its_bot_together() -> None:
    wecom = WeComEmulator(corp_id=wc.CORP, apps={wc.AGENT: wc.SECRET}, clock=SystemClock())
    with pytest.raises(ValueError, match="both wecom and wecom_bot"):
        ChatPage(wecom=wecom)
    with pytest.raises(ValueError, match="at least one platform"):
        ChatPage()


async def test_existing_record_hooks_keep_being_called() -> None:
    wecom = WeComEmulator(
        corp_id=wc.CORP, apps={wc.AGENT: wc.SECRET}, clock=SystemClock(), org=wc.emulator_org()
    )
    seen: list[object] = []
    wecom.on_record = seen.append
    page = ChatPage(wecom=wecom, wecom_bot=WeComBot("http://127.0.0.1:9/", "t", wc.AES_KEY))
    async with TestClient(TestServer(wecom.app())) as client:
        async with client.get(
            "/cgi-bin/gettoken", params={"corpid": wc.CORP, "corpsecret": wc.SECRET}
        ) as resp:
            token = (await resp.json())["access_token"]
        body = {"touser": "LiNa", "msgtype": "text", "agentid": wc.AGENT, "text": {"content": "hi"}}
        async with client.post("/cgi-bin/message/send", params={"access_token": token}, json=body) as resp:
            assert (await resp.json())["errcode"] == 0
    assert len(seen) == 1
    (entry,) = page.timeline.entries("wecom", "LiNa")
    assert entry.text is not None and entry.text["text"] == "hi"


# ---------------------------------------------------------------- python -m emulator --bot-url


def test_the_command_line_serves_the_page_with_bot_url() -> None:
    args = parser().parse_args(
        [
            "--platform",
            "both",
            "--bot-url",
            "http://127.0.0.1:8080",
            "--wecom-token",
            "t",
            "--wecom-aes-key",
            wc.AES_KEY,
        ]
    )
    paths = {r.resource.canonical for r in build_app(args).router.routes() if r.resource is not None}
    assert {
        "/",
        "/_chat/send",
        "/_chat/click",
        "/_chat/events",
        "/cgi-bin/message/send",
        "/v1.0/card/instances",
    } <= paths
    plain = {r.resource.canonical for r in build_app(parser().parse_args([])).router.routes() if r.resource}
    assert "/" not in plain
    with pytest.raises(SystemExit):
        main(["--bot-url", "http://127.0.0.1:8080"])  # WeCom needs the token and AES key
