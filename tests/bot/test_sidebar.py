"""The work-order sidebar's endpoints through the real app, against the real WeCom emulator server
(SQLite and PostgreSQL): WeCom's OAuth and the cookie session, the CSRF token, the JS-SDK page
signature (checked by the emulator), the customer's context with the archive pulled on open,
creating a work order with linked messages, linking to an existing one, and refusals that
change nothing."""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import RUNTIME, create_app
from bot.sidebar.session import COOKIE, LOGIN_COOKIE
from config.settings import load_settings
from core import commands as c
from core.order_no import order_no, ticket_id_of
from core.service import Done
from core.workorder import CUSTOMER, Customer
from emulator.wecom import SystemClock, WeComEmulator
from emulator.wecom_oauth import USER_COOKIE
from store.chat_records import SqlChatRecords
from store.customers import SqlCustomers
from store.db import Database
from store.queries import SqlTicketQueries
from store.tables import ticket, work_order, work_order_message
from store.workorders import SqlWorkOrders
from tests.bot.test_wecom_chat import AES_KEY, AGENT, CONFIG, CORP, SECRET, TOKEN, emulator_org
from tests.fakes import FakeClock

PUBLIC = "http://bot.example.com"
PAGE_URL = f"{PUBLIC}/sidebar/workorder"
LINK_SECRET = "sidebar-test-link-secret-0123456789"
ALICE = "wmAliceCustomer000000000000001"  # a customer of XuLi (徐丽, 客服部)
BOB = "wmBobCustomer00000000000000002"
CAROL = "wmCarolCustomer0000000000000003"  # followed by HePing only
FAULT = {"customer_name": "Bob", "category": "fault", "priority": "high", "description": "坏了"}
LEAVE = {
    "leave_type": "annual",
    "start_date": "2026-03-02",
    "end_date": "2026-03-03",
    "days": 2,
    "reason": "事",
}


@dataclass
class Env:
    client: TestClient[web.Request, web.Application]
    app: web.Application
    emulator: WeComEmulator
    base: str  # the emulator's URL
    clock: FakeClock  # the emulator's: each archived message a second after the last

    @property
    def db(self) -> Database:
        return self.app[RUNTIME].db

    async def login(
        self, userid: str = "XuLi", client: TestClient[web.Request, web.Application] | None = None
    ) -> str:
        """WeCom's OAuth as `userid`, as a browser does it; the page's CSRF token."""
        client = client or self.client
        resp = await client.get("/sidebar/workorder", allow_redirects=False)
        assert resp.status == 302, await resp.text()
        assert LOGIN_COOKIE in resp.cookies
        location = resp.headers["Location"]
        assert location.startswith(f"{self.base}/connect/oauth2/authorize?appid={CORP}&redirect_uri=")
        at_wecom = await client.session.get(
            location.split("#")[0], headers={"Cookie": f"{USER_COOKIE}={userid}"}, allow_redirects=False
        )
        assert at_wecom.status == 302, await at_wecom.text()
        back = at_wecom.headers["Location"]
        assert back.startswith(f"{PAGE_URL}/oauth?code="), back
        resp = await client.get(back.removeprefix(PUBLIC), allow_redirects=False)
        assert resp.status == 303, await resp.text()
        assert resp.headers["Location"] == "../workorder" and COOKIE in resp.cookies
        page = await client.get("/sidebar/workorder")
        assert page.status == 200
        found = re.search(r'data-csrf="([A-Za-z0-9_-]{43})"', await page.text())
        assert found is not None
        return found.group(1)

    async def get(self, path: str, token: str | None) -> aiohttp.ClientResponse:
        headers = {"X-CSRF-Token": token} if token else {}
        return await self.client.get(path, headers=headers)

    async def post(self, path: str, body: Any, token: str | None) -> aiohttp.ClientResponse:
        headers = {"Content-Type": "application/json", **({"X-CSRF-Token": token} if token else {})}
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return await self.client.post(path, data=data, headers=headers)

    def say(self, sender: str, to: str, text: str) -> str:
        """A 1:1 message in the chat archive; its msgid."""
        self.clock.advance(seconds=1)
        return self.emulator.archive.record(sender, [to], text).msgid

    async def counts(self) -> tuple[int, int, int]:
        """Tickets, work-order relations, linked messages: what a refusal must not change."""
        async with self.db.read() as conn:
            out = []
            for table in (ticket, work_order, work_order_message):
                out.append(int((await conn.execute(select(func.count()).select_from(table))).scalar_one()))
        return out[0], out[1], out[2]


@pytest.fixture
async def env(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Env:
    clock = FakeClock(SystemClock().now())
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, org=emulator_org())
    server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
    base = str(server.make_url("")).rstrip("/")
    settings = load_settings(
        env={
            "TICKETBOT_WECOM_CORP_ID": CORP,
            "TICKETBOT_WECOM_AGENT_ID": str(AGENT),
            "TICKETBOT_WECOM_SECRET": SECRET,
            "TICKETBOT_WECOM_TOKEN": TOKEN,
            "TICKETBOT_WECOM_AES_KEY": AES_KEY,
            "TICKETBOT_WECOM_API_BASE": base,
            "TICKETBOT_WECOM_OAUTH_BASE": base,
            "TICKETBOT_WECOM_JSSDK_URLS": f"{base}/wwopen/js/jwxwork.js",
            "TICKETBOT_CHAT_ARCHIVE_URL": f"{base}/_emulator/archive",
            "TICKETBOT_PUBLIC_URL": PUBLIC,
            "TICKETBOT_LINK_SECRET": LINK_SECRET,
            "TICKETBOT_DUE_WORK_SECONDS": "0",
        },
        database_url=database_url,
        config_dir=CONFIG,
    )
    app = await create_app(settings)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    customers = SqlCustomers(app[RUNTIME].db)
    now = SystemClock().now()
    await customers.upsert(
        Customer(ALICE, "Alice", corp_name="Alice Co.", follow_users=({"userid": "XuLi"},)), now
    )
    await customers.upsert(
        Customer(BOB, "Bob", follow_users=({"userid": "XuLi"}, {"userid": "LiuYang"})), now
    )
    await customers.upsert(Customer(CAROL, "Carol", follow_users=({"userid": "HePing"},)), now)
    return Env(client, app, emulator, base, clock)


# ---------------------------------------------------------------- sign-in


async def test_a_stranger_goes_through_wecom_oauth_and_gets_the_page(env: Env) -> None:
    token = await env.login("XuLi")
    page = await env.client.get("/sidebar/workorder")
    html = await page.text()
    assert "徐丽" in html and f'<script src="{env.base}/wwopen/js/jwxwork.js"></script>' in html
    csp = page.headers["Content-Security-Policy"]
    assert f"script-src 'self' {env.base};" in csp and "'unsafe-inline'" not in csp
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert len(token) == 43
    js = await env.client.get("/sidebar/static/sidebar.js")
    assert js.status == 200 and "getCurExternalContact" in await js.text()
    assert (await env.client.get("/sidebar/static/nope.js")).status == 404


async def test_the_oauth_return_must_come_back_to_the_browser_that_started_it(
    env: Env, aiohttp_client: Any
) -> None:
    resp = await env.client.get("/sidebar/workorder", allow_redirects=False)
    location = resp.headers["Location"]
    at_wecom = await env.client.session.get(
        location.split("#")[0], headers={"Cookie": f"{USER_COOKIE}=XuLi"}, allow_redirects=False
    )
    back = at_wecom.headers["Location"].removeprefix(PUBLIC)
    # another browser: no login cookie
    other: TestClient[web.Request, web.Application] = await aiohttp_client(env.client.server)
    refused = await other.get(back, allow_redirects=False)
    assert refused.status == 403 and COOKIE not in refused.cookies
    assert "登录已失效" in await refused.text()
    tampered = back.replace("state=", "state=1", 1)
    assert (await env.client.get(tampered, allow_redirects=False)).status == 403


async def test_a_member_outside_the_directory_gets_no_session(env: Env) -> None:
    resp = await env.client.get("/sidebar/workorder", allow_redirects=False)
    at_wecom = await env.client.session.get(
        resp.headers["Location"].split("#")[0],
        headers={"Cookie": f"{USER_COOKIE}=Stranger"},
        allow_redirects=False,
    )
    back = await env.client.get(at_wecom.headers["Location"].removeprefix(PUBLIC), allow_redirects=False)
    assert back.status == 403 and COOKIE not in back.cookies


async def test_the_api_needs_the_session_cookie_and_the_pages_csrf_token(
    env: Env, aiohttp_client: Any
) -> None:
    path = f"/sidebar/api/context?external_userid={ALICE}"
    assert (await env.get(path, None)).status == 401
    token = await env.login()
    assert (await env.get(path, None)).status == 403
    assert (await env.get(path, "x" * 43)).status == 403
    assert (await env.get(path, token)).status == 200
    # the token without the cookie
    other: TestClient[web.Request, web.Application] = await aiohttp_client(env.client.server)
    assert (await other.get(path, headers={"X-CSRF-Token": token})).status == 401
    before = await env.counts()
    body = {"external_userid": ALICE, "order_no": order_no(1), "msg_ids": ["x"]}
    assert (await env.post("/sidebar/api/links", body, None)).status == 403
    form = await env.client.post(
        "/sidebar/api/links",
        data=json.dumps(body),
        headers={"X-CSRF-Token": token, "Content-Type": "text/plain"},
    )
    assert form.status == 415
    assert await env.counts() == before


# ---------------------------------------------------------------- the JS-SDK signature


async def test_the_page_url_is_signed_as_the_emulator_checks_wx_agent_config(env: Env) -> None:
    token = await env.login()
    url = f"{PAGE_URL}?from=toolbar"
    resp = await env.get("/sidebar/api/config?" + urllib.parse.urlencode({"url": url}), token)
    assert resp.status == 200
    signed = await resp.json()
    assert signed["corpid"] == CORP and signed["agentid"] == AGENT
    assert signed["jsApiList"] == ["getContext", "getCurExternalContact"]
    call = {**signed, "url": url, "userid": "XuLi"}
    assert env.emulator.jsapi.check(call)[0] == "agentConfig:ok"
    assert (
        env.emulator.jsapi.check({**call, "signature": "0" * 40})[0] == "agentConfig:fail invalid signature"
    )
    assert env.emulator.jsapi.check({**call, "url": PAGE_URL})[0] == "agentConfig:fail invalid signature"
    for bad in ("https://evil.example/sidebar/workorder", f"{PAGE_URL}#x", f"{PAGE_URL}/../../tickets/1", ""):
        answer = await env.get("/sidebar/api/config?" + urllib.parse.urlencode({"url": bad}), token)
        assert answer.status == 400, bad


# ---------------------------------------------------------------- what it shows


async def test_the_context_pulls_the_archive_and_shows_only_this_pairs_messages(env: Env) -> None:
    token = await env.login()
    hello = env.say("XuLi", ALICE, "您好")
    broken = env.say(ALICE, "XuLi", "坏了")
    env.say("HePing", ALICE, "别人的会话")
    env.say("XuLi", BOB, "另一位客户")
    resp = await env.get(f"/sidebar/api/context?external_userid={ALICE}", token)
    assert resp.status == 200
    data = await resp.json()
    assert data["staff"] == {"username": "xuli", "name": "徐丽"}
    assert data["customer"]["name"] == "Alice" and data["customer"]["known"] is True
    assert [(m["id"], m["direction"], m["text"]) for m in data["messages"]] == [
        (hello, "out", "您好"),
        (broken, "in", "坏了"),
    ]
    assert data["orders"] == []
    (template,) = data["templates"]
    assert template["id"] == 3 and {"value": "fault", "label": "故障报修"} in template["categories"]
    assert template["default_priority"] == "normal"
    unknown = await env.get("/sidebar/api/context?external_userid=wmNobody", token)
    assert unknown.status == 403  # not synced yet: nobody is known to follow them
    assert (await env.get("/sidebar/api/context?external_userid=a%20b", token)).status == 400


# ---------------------------------------------------------------- create and link


def _create_body(msg_ids: list[str], **over: Any) -> dict[str, Any]:
    return {
        "external_userid": ALICE,
        "template_id": 3,
        "customer_name": "Alice",
        "category": "fault",
        "priority": "high",
        "description": "路由器连不上网",
        "msg_ids": msg_ids,
        "request_id": "req-0001-abcdef",
        **over,
    }


async def test_create_makes_a_related_work_order_with_the_chosen_messages_once(env: Env) -> None:
    token = await env.login()
    first = env.say(ALICE, "XuLi", "路由器连不上网")
    second = env.say(ALICE, "XuLi", "灯一直闪")
    env.say("XuLi", ALICE, "收到")
    await env.get(f"/sidebar/api/context?external_userid={ALICE}", token)  # the archive is pulled
    resp = await env.post("/sidebar/api/workorders", _create_body([first, second]), token)
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    assert made["linked"] == 2 and made["total"] == 2
    ticket_id = ticket_id_of(made["order_no"])
    assert ticket_id is not None
    assert ticket_id == made["ticket_id"]
    stored = await SqlTicketQueries(env.db).get_ticket(ticket_id)
    assert stored is not None and stored.creator == "xuli" and stored.workflow_id == 3
    assert stored.fields["customer_id"] == ALICE and stored.fields["customer_name"] == "Alice"
    relation = (await SqlWorkOrders(env.db).relations([ticket_id]))[ticket_id]
    assert (relation.relation_type, relation.relation_id) == (CUSTOMER, ALICE)
    assert set(await SqlChatRecords(env.db).linked(ticket_id)) == {first, second}

    before = await env.counts()
    again = await env.post("/sidebar/api/workorders", _create_body([first, second]), token)  # posted twice
    assert again.status == 201 and (await again.json())["order_no"] == made["order_no"]
    assert await env.counts() == before
    reused = await env.post("/sidebar/api/workorders", _create_body([], external_userid=BOB), token)
    assert reused.status == 409 and await env.counts() == before

    context = await (await env.get(f"/sidebar/api/context?external_userid={ALICE}", token)).json()
    assert [o["order_no"] for o in context["orders"]] == [made["order_no"]]
    assert context["orders"][0]["linked"] == 2
    assert {m["id"]: m["linked"] for m in context["messages"]}[first] == [made["order_no"]]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("{not json", 400),
        ("[1, 2]", 400),
        ({"external_userid": "bad id", "request_id": "req-0001-abcdef"}, 400),
        ({"external_userid": ALICE}, 400),  # no request_id
        ({"external_userid": ALICE, "request_id": "short"}, 400),
        ({"external_userid": ALICE, "request_id": "req-0001-abcdef", "template_id": 1}, 400),  # leave
        ({"external_userid": ALICE, "request_id": "req-0001-abcdef", "msg_ids": "m1"}, 400),
        ({"external_userid": ALICE, "request_id": "req-0001-abcdef", "msg_ids": ["nope"]}, 404),
        ({"external_userid": ALICE, "request_id": "req-0001-abcdef", "category": "x" * 201}, 400),
        (
            {
                "external_userid": ALICE,
                "request_id": "req-0001-abcdef",
                "customer_name": "Alice",
                "category": "no-such-category",
                "priority": "high",
                "description": "x",
            },
            400,
        ),
        ({"external_userid": ALICE, "request_id": "req-0001-abcdef", "customer_name": "Alice"}, 400),
    ],
)
async def test_bad_creates_are_refused_and_change_nothing(env: Env, body: Any, status: int) -> None:
    token = await env.login()
    before = await env.counts()
    resp = await env.post("/sidebar/api/workorders", body, token)
    assert resp.status == status, await resp.text()
    assert "error" in await resp.json()
    assert await env.counts() == before


async def test_messages_of_another_pair_are_refused_and_change_nothing(env: Env) -> None:
    token = await env.login()
    foreign = env.say("HePing", ALICE, "别人的会话")
    mine = env.say(ALICE, "XuLi", "我的")
    other_customer = env.say(BOB, "XuLi", "Bob 的")
    await env.get(f"/sidebar/api/context?external_userid={ALICE}", token)
    before = await env.counts()
    for bad in ([mine, foreign], [other_customer]):
        resp = await env.post("/sidebar/api/workorders", _create_body(bad), token)
        assert resp.status == 403, await resp.text()
    assert await env.counts() == before


async def test_a_customer_the_staff_member_does_not_follow_is_refused_and_nothing_changes(env: Env) -> None:
    """The browser names the customer; only their follow users (or a super admin) get anything."""
    token = await env.login()  # XuLi follows Alice and Bob, not Carol
    resp = await env.get(f"/sidebar/api/context?external_userid={CAROL}", token)
    assert resp.status == 403 and "跟进人" in (await resp.json())["error"]
    resp = await env.get("/sidebar/api/context?external_userid=wmNobodyKnowsThisOne", token)
    assert resp.status == 403
    before = await env.counts()
    create = {**_create_body([]), "external_userid": CAROL}
    assert (await env.post("/sidebar/api/workorders", create, token)).status == 403
    link = {"external_userid": CAROL, "order_no": order_no(1), "msg_ids": ["x"]}
    assert (await env.post("/sidebar/api/links", link, token)).status == 403
    assert await env.counts() == before


async def test_link_to_an_existing_order_of_the_customer(env: Env) -> None:
    token = await env.login()
    runtime = env.app[RUNTIME]
    made = await runtime.service.create(c.Create("xuli", 3, 351, {**FAULT, "customer_name": "Alice"}))
    assert isinstance(made, Done)
    mine = made.ticket.id
    await SqlWorkOrders(env.db).relate(mine, CUSTOMER, ALICE, SystemClock().now())
    bobs = await runtime.service.create(c.Create("xuli", 3, 351, FAULT))
    assert isinstance(bobs, Done)
    await SqlWorkOrders(env.db).relate(bobs.ticket.id, CUSTOMER, BOB, SystemClock().now())
    leave = await runtime.service.create(c.Create("xuli", 1, 151, LEAVE))
    assert isinstance(leave, Done)
    first = env.say(ALICE, "XuLi", "一")
    second = env.say("XuLi", ALICE, "二")
    await env.get(f"/sidebar/api/context?external_userid={ALICE}", token)

    def body(ticket_id: int, ids: list[str]) -> dict[str, Any]:
        return {"external_userid": ALICE, "order_no": order_no(ticket_id), "msg_ids": ids}

    resp = await env.post("/sidebar/api/links", body(mine, [first]), token)
    assert resp.status == 200 and (await resp.json())["linked"] == 1
    resp = await env.post("/sidebar/api/links", body(mine, [first, second]), token)
    assert (await resp.json())["linked"] == 1 and (await resp.json())["total"] == 2
    before = await env.counts()
    assert (await env.post("/sidebar/api/links", body(bobs.ticket.id, [first]), token)).status == 409
    assert (await env.post("/sidebar/api/links", body(leave.ticket.id, [first]), token)).status == 404
    assert (await env.post("/sidebar/api/links", body(10**9, [first]), token)).status == 404
    assert (await env.post("/sidebar/api/links", body(mine, []), token)).status == 400
    assert (await env.post("/sidebar/api/links", body(mine, ["nope"]), token)).status == 404
    bad_no = {"external_userid": ALICE, "order_no": "12", "msg_ids": [first]}
    assert (await env.post("/sidebar/api/links", bad_no, token)).status == 400
    assert await env.counts() == before


async def test_a_staff_member_who_may_not_see_the_order_cannot_link_to_it(
    env: Env, aiohttp_client: Any
) -> None:
    runtime = env.app[RUNTIME]
    made = await runtime.service.create(c.Create("xuli", 3, 351, FAULT))
    assert isinstance(made, Done)
    liuyang: TestClient[web.Request, web.Application] = await aiohttp_client(env.client.server)
    token = await env.login("LiuYang", client=liuyang)  # 技术部: not involved, not a viewer
    mine = env.say(BOB, "LiuYang", "hi")
    headers = {"X-CSRF-Token": token, "Content-Type": "application/json"}
    await liuyang.get(f"/sidebar/api/context?external_userid={BOB}", headers=headers)
    body = {"external_userid": BOB, "order_no": order_no(made.ticket.id), "msg_ids": [mine]}
    resp = await liuyang.post("/sidebar/api/links", data=json.dumps(body), headers=headers)
    assert resp.status == 404
    assert await SqlChatRecords(env.db).linked(made.ticket.id) == []


async def test_the_sidebar_is_off_without_wecom(aiohttp_client: Any, database_url: str) -> None:
    settings = load_settings(
        env={"TICKETBOT_DUE_WORK_SECONDS": "0"}, database_url=database_url, config_dir=CONFIG
    )
    client: TestClient[web.Request, web.Application] = await aiohttp_client(await create_app(settings))
    page = await client.get("/sidebar/workorder", allow_redirects=False)
    assert page.status == 503 and "侧边栏未启用" in await page.text()
    assert (await client.get("/sidebar/api/context?external_userid=wmA")).status == 503
