"""The WeCom emulator's JS-SDK side and chat archive: the agent jsapi_ticket, wx.agentConfig's
signature check (a wrong signature is refused), wx.invoke's answers from the customer chat open in
the chat page, the archive endpoint, and the chat page's customer chats."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from emulator.chat.customers import CustomerChats, ToolbarPage
from emulator.wecom import WeComEmulator
from emulator.wecom_jsapi import TICKET_TTL, agent_config_signature
from tests.fakes import FakeClock

CORP = "ww-corp-1"
AGENT = 1000002
SECRET = "app-secret-xyz"
ORG: dict[str, list[dict[str, Any]]] = {
    "departments": [{"id": 1, "name": "总部", "parentid": 0}],
    "users": [
        {"userid": "XuLi", "name": "徐丽", "department": [1]},
        {"userid": "HePing", "name": "何平", "department": [1]},
    ],
}
PAGE = "https://bot.example.com/sidebar/workorder"
CUSTOMERS: list[dict[str, Any]] = [
    {"external_userid": "wmAlice", "name": "Alice", "follow_user": [{"userid": "XuLi"}]},
    {
        "external_userid": "woBob",
        "name": "Bob",
        "corp_name": "Bob Co.",
        "type": 2,
        "follow_user": [{"userid": "HePing"}],
    },
]


class Env:
    def __init__(
        self, client: TestClient[web.Request, web.Application], emulator: WeComEmulator, clock: FakeClock
    ) -> None:
        self.client = client
        self.emulator = emulator
        self.clock = clock

    async def ticket(self) -> dict[str, Any]:
        token = (
            await (
                await self.client.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET})
            ).json()
        )["access_token"]
        resp = await self.client.get(
            "/cgi-bin/ticket/get", params={"access_token": token, "type": "agent_config"}
        )
        body: dict[str, Any] = await resp.json()
        return body

    def signed(self, ticket: str, **over: Any) -> dict[str, Any]:
        call = {
            "userid": "XuLi",
            "corpid": CORP,
            "agentid": AGENT,
            "timestamp": 1793520000,
            "nonceStr": "n0nce",
            "url": PAGE,
            "jsApiList": ["getContext", "getCurExternalContact"],
        }
        call["signature"] = agent_config_signature(ticket, "n0nce", "1793520000", PAGE)
        return {**call, **over}

    async def post(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        resp = await self.client.post(path, json=body)
        data: dict[str, Any] = await resp.json()
        return resp.status, data


@pytest.fixture
async def env(aiohttp_client: Any) -> Env:
    clock = FakeClock()
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, org=ORG)
    emulator.contacts.load(CUSTOMERS)
    app = emulator.app()
    CustomerChats(emulator, (ToolbarPage("工单", PAGE),)).add_routes(app)
    return Env(await aiohttp_client(app), emulator, clock)


async def test_the_agent_ticket_is_issued_once_while_valid(env: Env) -> None:
    first = await env.ticket()
    assert first["errcode"] == 0 and first["expires_in"] == 7200 and first["ticket"]
    assert (await env.ticket())["ticket"] == first["ticket"]
    env.clock.advance(seconds=TICKET_TTL.total_seconds())
    assert (await env.ticket())["ticket"] != first["ticket"]
    wrong = await env.client.get(
        "/cgi-bin/ticket/get", params={"access_token": "nope", "type": "agent_config"}
    )
    assert (await wrong.json())["errcode"] == 40014
    token = (
        await (
            await env.client.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET})
        ).json()
    )["access_token"]
    no_type = await env.client.get("/cgi-bin/ticket/get", params={"access_token": token})
    assert (await no_type.json())["errcode"] == 40058


async def test_agent_config_accepts_the_right_signature_and_refuses_a_wrong_one(env: Env) -> None:
    status, answer = await env.post("/_emulator/jsapi/agent_config", env.signed("not-issued-yet"))
    assert answer["err_msg"].startswith("agentConfig:fail no jsapi_ticket")
    ticket = (await env.ticket())["ticket"]
    status, answer = await env.post("/_emulator/jsapi/agent_config", env.signed(ticket))
    assert status == 200 and answer["err_msg"] == "agentConfig:ok" and answer["config_id"]
    bad = {
        "signature": "0" * 40,
        "url": PAGE + "?other=1",  # signed for another URL
        "timestamp": 1793520001,
        "nonceStr": "other",
    }
    for key, value in bad.items():
        _, refused = await env.post("/_emulator/jsapi/agent_config", env.signed(ticket, **{key: value}))
        assert refused == {"err_msg": "agentConfig:fail invalid signature"}, key
    for over, why in (
        ({"corpid": "ww-other"}, "invalid corpid"),
        ({"agentid": 1}, "invalid agentid"),
        ({"url": PAGE + "#top"}, "invalid arguments"),
        ({"jsApiList": []}, "jsApiList"),
        ({"userid": "Stranger"}, "no WeCom member"),
    ):
        _, refused = await env.post("/_emulator/jsapi/agent_config", env.signed(ticket, **over))
        assert why in refused["err_msg"] and "config_id" not in refused
    env.clock.advance(seconds=TICKET_TTL.total_seconds())  # the ticket expired
    _, late = await env.post("/_emulator/jsapi/agent_config", env.signed(ticket))
    assert late["err_msg"].startswith("agentConfig:fail no jsapi_ticket")
    assert [v.err_msg for v in env.emulator.jsapi.verifications][1] == "agentConfig:ok"
    assert (await env.client.post("/_emulator/jsapi/agent_config", data="[")).status == 400


async def test_invoke_answers_from_the_chat_open_in_the_chat_page(env: Env) -> None:
    ticket = (await env.ticket())["ticket"]
    _, early = await env.post(
        "/_emulator/jsapi/invoke", {"userid": "XuLi", "config_id": "x", "api": "getContext"}
    )
    assert early["err_msg"].startswith("getContext:fail no permission")
    _, config = await env.post("/_emulator/jsapi/agent_config", env.signed(ticket, jsApiList=["getContext"]))
    config_id = config["config_id"]

    async def invoke(api: str, userid: str = "XuLi") -> dict[str, Any]:
        return (
            await env.post("/_emulator/jsapi/invoke", {"userid": userid, "config_id": config_id, "api": api})
        )[1]

    assert (await invoke("getContext"))["entry"] == "normal"
    status, _ = await env.post("/_chat/customers/open", {"userid": "XuLi", "external_userid": "wmAlice"})
    assert status == 200 and env.emulator.jsapi.open_chats == {"XuLi": "wmAlice"}
    assert await invoke("getContext") == {
        "err_msg": "getContext:ok",
        "entry": "single_chat_tools",
        "shareTicket": "",
    }
    assert (await invoke("getCurExternalContact"))["err_msg"].endswith("not in jsApiList)")
    assert (await invoke("getContext", "HePing"))["err_msg"].startswith("getContext:fail no permission")

    _, both = await env.post("/_emulator/jsapi/agent_config", env.signed(ticket))
    config_id = both["config_id"]
    assert await invoke("getCurExternalContact") == {
        "err_msg": "getCurExternalContact:ok",
        "userId": "wmAlice",
    }
    await env.post("/_chat/customers/open", {"userid": "XuLi", "external_userid": None})
    assert (await invoke("getCurExternalContact"))["err_msg"].startswith("getCurExternalContact:fail")


async def test_the_sdk_script_is_served(env: Env) -> None:
    resp = await env.client.get("/wwopen/js/jwxwork.js")
    text = await resp.text()
    assert resp.status == 200 and resp.content_type == "application/javascript"
    assert "agentConfig" in text and "postMessage" in text


async def test_customer_chats_go_into_the_archive(env: Env) -> None:
    customers = await (await env.client.get("/_chat/customers", params={"userid": "XuLi"})).json()
    assert customers == {
        "customers": [{"external_userid": "wmAlice", "name": "Alice", "corp_name": ""}],
        "toolbar": [{"name": "工单", "url": PAGE}],
    }
    _, sent = await env.post(
        "/_chat/customers/send", {"userid": "XuLi", "external_userid": "wmAlice", "text": "您好"}
    )
    env.clock.advance(seconds=1)
    _, back = await env.post(
        "/_chat/customers/send",
        {"userid": "XuLi", "external_userid": "wmAlice", "text": "坏了", "as": "customer"},
    )
    assert (sent["message"]["from"], sent["message"]["tolist"]) == ("XuLi", ["wmAlice"])
    assert (back["message"]["from"], back["message"]["tolist"]) == ("wmAlice", ["XuLi"])
    assert back["message"]["msgtime"] - sent["message"]["msgtime"] == 1000
    listed = await (
        await env.client.get(
            "/_chat/customers/messages", params={"userid": "XuLi", "external_userid": "wmAlice"}
        )
    ).json()
    assert [m["text"]["content"] for m in listed["messages"]] == ["您好", "坏了"]

    archived = await (await env.client.get("/_emulator/archive", params={"seq": "1", "limit": "10"})).json()
    assert archived["errcode"] == 0 and [m["seq"] for m in archived["chatdata"]] == [2]
    assert archived["chatdata"][0] == {**back["message"], "seq": 2}
    assert set(archived["chatdata"][0]) == {
        "seq",
        "msgid",
        "action",
        "from",
        "tolist",
        "roomid",
        "msgtime",
        "msgtype",
        "text",
    }
    for bad in ({"seq": "-1"}, {"limit": "0"}, {"limit": "1001"}, {"seq": "x"}):
        assert (await (await env.client.get("/_emulator/archive", params=bad)).json())["errcode"] == 40058


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (
            "/_chat/customers/send",
            {"userid": "XuLi", "external_userid": "woBob", "text": "x"},
            404,
        ),  # not his
        ("/_chat/customers/send", {"userid": "Nobody", "external_userid": "wmAlice", "text": "x"}, 404),
        ("/_chat/customers/send", {"userid": "XuLi", "external_userid": "wmAlice", "text": " "}, 400),
        (
            "/_chat/customers/send",
            {"userid": "XuLi", "external_userid": "wmAlice", "text": "x", "as": "bot"},
            400,
        ),
        ("/_chat/customers/send", {"userid": "XuLi", "external_userid": "wmAlice", "text": "x" * 2049}, 400),
        ("/_chat/customers/open", {"userid": "XuLi", "external_userid": ""}, 400),
        ("/_chat/customers/open", [], 400),
    ],
)
async def test_bad_customer_chat_calls_are_refused(env: Env, path: str, body: Any, status: int) -> None:
    got, answer = await env.post(path, body)
    assert got == status and "error" in answer
    assert env.emulator.archive.messages == [] and env.emulator.jsapi.open_chats == {}
