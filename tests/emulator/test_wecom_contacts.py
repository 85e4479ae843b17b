"""The WeCom emulator's customer contact (客户联系): externalcontact/get and /list with token checks
and WeCom's errcodes, staff actions that push the encrypted change_external_contact callback, and
the /_emulator/contacts control surface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.wecom.callback import parse_post, parse_query
from bot.wecom.crypto import WeComCrypto
from emulator.chat import WeComBot
from emulator.stack import build_stack
from emulator.wecom import WeComEmulator
from emulator.wecom_contacts import ContactError
from tests.fakes import FakeClock

CORP = "ww-corp-1"
AGENT = 1000002
SECRET = "app-secret-xyz"
TOKEN = "cbToken"
AES = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
ORG: dict[str, list[dict[str, Any]]] = {
    "departments": [{"id": 1, "name": "总部", "parentid": 0}],
    "users": [
        {"userid": "LiuYang", "name": "刘洋", "department": [1]},
        {"userid": "XuLi", "name": "徐丽", "department": [1]},
        {"userid": "Idle", "name": "没有客户", "department": [1]},
    ],
}
CUSTOMERS: list[dict[str, Any]] = [
    {
        "external_userid": "wmA",
        "name": "大大怪",
        "type": 1,
        "follow_user": [
            {"userid": "LiuYang", "remark": "老客户", "createtime": 1700000000},
            {"userid": "XuLi", "createtime": 1700000100},
        ],
    },
    {"external_userid": "wmGone", "name": "走了"},
]
GET = "/cgi-bin/externalcontact/get"
LIST = "/cgi-bin/externalcontact/list"
FOLLOW_LIST = "/cgi-bin/externalcontact/get_follow_user_list"


@dataclass
class Received:
    """A stand-in bot: decrypts each callback with the product's own crypto and parser."""

    events: list[Any] = field(default_factory=list)
    status: int = 200

    async def handle(self, request: web.Request) -> web.Response:
        event = parse_post(
            WeComCrypto(TOKEN, AES, CORP),
            parse_query(request.rel_url.raw_query_string),
            await request.read(),
            CORP,
        )
        self.events.append(event)
        return web.Response(status=self.status)


@dataclass
class Env:
    emulator: WeComEmulator
    clock: FakeClock
    http: TestClient[web.Request, web.Application]
    bot: Received

    async def call(self, path: str, **params: str) -> dict[str, Any]:
        resp = await self.http.get(path, params=params)
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body

    async def token(self) -> str:
        got = await self.call("/cgi-bin/gettoken", corpid=CORP, corpsecret=SECRET)
        return str(got["access_token"])

    async def control(self, body: Any) -> tuple[int, dict[str, Any]]:
        resp = await self.http.post("/_emulator/contacts", json=body)
        answer: dict[str, Any] = await resp.json()
        return resp.status, answer


@pytest.fixture
async def env(aiohttp_client: Any, aiohttp_server: Any) -> Env:
    received = Received()
    bot_app = web.Application()
    bot_app.router.add_post("/wecom/callback", received.handle)
    bot_server = await aiohttp_server(bot_app)
    clock = FakeClock()
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, org=ORG)
    emulator.contacts.load(CUSTOMERS)
    stack = build_stack(
        wecom=emulator, wecom_bot=WeComBot(str(bot_server.make_url("/wecom/callback")), TOKEN, AES)
    )
    http: TestClient[web.Request, web.Application] = await aiohttp_client(stack.app)
    return Env(emulator, clock, http, received)


# ---------------------------------------------------------------- the API


@pytest.mark.parametrize("path", [GET, LIST, FOLLOW_LIST])
async def test_the_apis_refuse_a_missing_bad_or_expired_token(env: Env, path: str) -> None:
    params = {"external_userid": "wmA", "userid": "LiuYang"}
    assert (await env.call(path, **params))["errcode"] == 41001
    assert (await env.call(path, access_token="forged", **params))["errcode"] == 40014
    token = await env.token()
    assert (await env.call(path, access_token=token, **params))["errcode"] == 0
    env.emulator.expire_all_tokens()
    assert (await env.call(path, access_token=token, **params))["errcode"] == 42001
    token = await env.token()
    env.emulator.revoke_all_tokens()
    assert (await env.call(path, access_token=token, **params))["errcode"] == 40014
    env.emulator.forbidden_paths.add(path)
    assert (await env.call(path, access_token=await env.token(), **params))["errcode"] == 48002


async def test_get_answers_the_contact_its_follow_users_and_wecoms_errcodes(env: Env) -> None:
    token = await env.token()
    got = await env.call(GET, access_token=token, external_userid="wmA")
    assert got["errcode"] == 0 and got["next_cursor"] == ""
    assert got["external_contact"] == {"external_userid": "wmA", "name": "大大怪", "type": 1}
    assert [(f["userid"], f["remark"], f["createtime"]) for f in got["follow_user"]] == [
        ("LiuYang", "老客户", 1700000000),
        ("XuLi", "", 1700000100),
    ]
    assert (await env.call(GET, access_token=token))["errcode"] == 41035
    assert (await env.call(GET, access_token=token, external_userid="wmNobody"))["errcode"] == 40096
    assert (await env.call(GET, access_token=token, external_userid="wmGone"))["errcode"] == 84061


async def test_get_pages_follow_users(env: Env) -> None:
    env.emulator.contacts.follow_page = 1
    token = await env.token()
    first = await env.call(GET, access_token=token, external_userid="wmA")
    assert [f["userid"] for f in first["follow_user"]] == ["LiuYang"] and first["next_cursor"]
    second = await env.call(GET, access_token=token, external_userid="wmA", cursor=first["next_cursor"])
    assert [f["userid"] for f in second["follow_user"]] == ["XuLi"] and second["next_cursor"] == ""
    bad = await env.call(GET, access_token=token, external_userid="wmA", cursor="c99")
    assert bad["errcode"] == 40058


async def test_list_answers_a_members_customers_and_wecoms_errcodes(env: Env) -> None:
    token = await env.token()
    assert (await env.call(LIST, access_token=token, userid="XuLi"))["external_userid"] == ["wmA"]
    assert (await env.call(LIST, access_token=token))["errcode"] == 41009
    assert (await env.call(LIST, access_token=token, userid="Ghost"))["errcode"] == 60111
    assert (await env.call(LIST, access_token=token, userid="Idle"))["errcode"] == 84061


async def test_the_follow_user_list_names_the_members_with_the_customer_contact_feature(env: Env) -> None:
    token = await env.token()
    assert (await env.call(FOLLOW_LIST, access_token=token))["follow_user"] == ["LiuYang", "XuLi"]
    await env.emulator.contacts.add("Idle", {"name": "小小怪"})  # a member who adds a customer has it
    assert (await env.call(FOLLOW_LIST, access_token=token))["follow_user"] == ["Idle", "LiuYang", "XuLi"]
    await env.emulator.contacts.delete("Idle", env.emulator.contacts.changes[-1].external_userid)
    assert "Idle" in (await env.call(FOLLOW_LIST, access_token=token))["follow_user"]  # kept: a feature
    del env.emulator.users["XuLi"]  # left the corp
    assert (await env.call(FOLLOW_LIST, access_token=token))["follow_user"] == ["Idle", "LiuYang"]


async def test_chaos_applies_to_the_contact_apis(env: Env) -> None:
    env.emulator.fail_next(1, -1, path=GET)
    token = await env.token()
    assert (await env.call(GET, access_token=token, external_userid="wmA"))["errcode"] == -1
    assert (await env.call(GET, access_token=token, external_userid="wmA"))["errcode"] == 0


# ---------------------------------------------------------------- staff actions and callbacks


async def test_staff_actions_change_the_directory_and_push_the_encrypted_event(env: Env) -> None:
    contacts = env.emulator.contacts
    added = await contacts.add("Idle", {"name": "小小怪", "gender": 1}, follow={"state": "qr-7"})
    new_id = added.external_userid
    assert new_id.startswith("wm") and added.bot_status == 200
    assert contacts.customer(new_id)["follow_user"][0]["userid"] == "Idle"
    env.clock.advance(seconds=1)
    await contacts.edit("Idle", new_id, contact={"name": "小小怪2"}, follow={"remark": "新客户"})
    assert contacts.customer(new_id)["name"] == "小小怪2"
    env.clock.advance(seconds=1)
    await contacts.delete("LiuYang", "wmA")
    await contacts.deleted_by_customer("XuLi", "wmA")
    assert contacts.customer("wmA")["follow_user"] == []
    half = await contacts.add("LiuYang", {"external_userid": "wmA"}, half=True)
    assert half.change_type == "add_half_external_contact"

    got = [(e.change_type, e.user_id, e.external_user_id) for e in env.bot.events]
    assert got == [
        ("add_external_contact", "Idle", new_id),
        ("edit_external_contact", "Idle", new_id),
        ("del_external_contact", "LiuYang", "wmA"),
        ("del_follow_user", "XuLi", "wmA"),
        ("add_half_external_contact", "LiuYang", "wmA"),
    ]
    first = env.bot.events[0]
    assert (first.msg_type, first.event, first.from_user) == ("event", "change_external_contact", "sys")
    assert (
        first.create_time == int(env.clock.now().timestamp()) - 2 and "<State><![CDATA[qr-7]]>" in first.raw
    )
    assert [c.bot_status for c in contacts.changes] == [200] * 5


async def test_refused_staff_actions_change_nothing(env: Env) -> None:
    contacts = env.emulator.contacts
    with pytest.raises(ContactError, match="already a customer"):
        await contacts.add("LiuYang", {"external_userid": "wmA"})
    with pytest.raises(ContactError, match="not a member"):
        await contacts.add("Ghost", {"name": "x"})
    with pytest.raises(ContactError, match="needs a name"):
        await contacts.add("LiuYang", {"external_userid": "wmNew"})
    with pytest.raises(ContactError, match="not a customer of"):
        await contacts.delete("Idle", "wmA")
    with pytest.raises(ContactError, match="no external contact"):
        await contacts.edit("LiuYang", "wmNobody")
    with pytest.raises(ContactError, match="unknown fields"):
        await contacts.edit("LiuYang", "wmA", contact={"mobile": "1"})
    assert env.bot.events == [] and contacts.changes == []


async def test_announce_tells_the_bot_every_relation_and_an_unreachable_bot_is_recorded(env: Env) -> None:
    changes = await env.emulator.contacts.announce()
    assert [(c.userid, c.external_userid) for c in changes] == [("LiuYang", "wmA"), ("XuLi", "wmA")]
    assert [e.change_type for e in env.bot.events] == ["add_external_contact"] * 2
    env.emulator.contacts.connect("http://127.0.0.1:9/wecom/callback", TOKEN, AES)  # nothing listens
    change = await env.emulator.contacts.delete("XuLi", "wmA")
    assert change.bot_status is None and "could not be reached" in change.error


# ---------------------------------------------------------------- the control surface


async def test_the_control_surface_adds_edits_deletes_and_lists(env: Env) -> None:
    status, body = await env.control(
        {
            "action": "add",
            "userid": "XuLi",
            "external_userid": "woStar",
            "contact": {"name": "王经理", "type": 2},
        }
    )
    assert status == 200 and body["change"]["change_type"] == "add_external_contact"
    assert body["change"]["bot_status"] == 200
    status, _ = await env.control(
        {"action": "edit", "userid": "XuLi", "external_userid": "woStar", "follow": {"remark": "王"}}
    )
    assert status == 200
    status, _ = await env.control({"action": "delete", "userid": "XuLi", "external_userid": "woStar"})
    assert status == 200
    resp = await env.http.get("/_emulator/contacts")
    listed = await resp.json()
    star = next(c for c in listed["customers"] if c["external_userid"] == "woStar")
    assert star["name"] == "王经理" and star["follow_user"] == []
    assert [c["change_type"] for c in listed["changes"]] == [
        "add_external_contact",
        "edit_external_contact",
        "del_external_contact",
    ]
    assert len(env.bot.events) == 3


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ([], 400, "JSON object"),
        ({"action": "add"}, 400, "userid is required"),
        ({"action": "fly", "userid": "XuLi", "external_userid": "wmA"}, 400, "unknown action"),
        ({"action": "delete", "userid": "XuLi"}, 400, "needs external_userid"),
        ({"action": "add", "userid": "Ghost", "contact": {"name": "x"}}, 404, "not a member"),
        ({"action": "add", "userid": "XuLi", "external_userid": "wmA"}, 409, "already a customer"),
        ({"action": "add", "userid": "Idle", "contact": {"name": "x", "gender": 7}}, 400, "gender"),
        ({"action": "add", "userid": "Idle", "contact": "x"}, 400, "contact must be an object"),
        ({"action": "add", "userid": "Idle", "contact": {"name": "x"}, "half": "y"}, 400, "half"),
        ({"action": "edit", "userid": "Idle", "external_userid": "wmA"}, 409, "not a customer"),
    ],
)
async def test_the_control_surface_refuses_bad_requests(env: Env, body: Any, status: int, error: str) -> None:
    got_status, answer = await env.control(body)
    assert got_status == status and error in answer["error"]
    assert env.bot.events == []
