"""The WeCom emulator: its crypto against Tencent's vectors and the product's adapter, its API rules
(tokens, send limits, error codes, response_code life) and its callback sender."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.wecom.crypto import CallbackRefused, WeComCrypto
from emulator.wecom import (
    WeComEmulator,
    encrypt_callback,
    retrying_send_callback,
    send_callback,
    template_card_event_xml,
    text_message_xml,
    verify_url,
)
from emulator.wecom_crypto import CryptoError, WeComCipher, aes_key, signature, signature_ok
from tests.fakes import FakeClock

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "bot" / "vectors" / "wecom.json").read_text(encoding="utf-8")
)["vectors"]
CORP = "ww-corp-1"
AGENT = 1000002
SECRET = "app-secret-xyz"
TOKEN = "cbToken"
AES = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
ORG: dict[str, list[dict[str, Any]]] = {
    "departments": [
        {"id": 1, "name": "总部", "parentid": 0, "order": 1},
        {"id": 2, "name": "IT", "parentid": 1, "order": 1},
        {"id": 3, "name": "运维", "parentid": 2, "order": 1},
    ],
    "users": [
        {"userid": "zhangsan", "name": "张三", "department": [1]},
        {"userid": "lisi", "name": "李四", "department": [2]},
        {"userid": "wangwu", "name": "王五", "department": [3]},
    ],
}

Api = Callable[..., Awaitable[dict[str, Any]]]


def parse_xml(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 - XML this test suite produced itself


# ---------------------------------------------------------------- crypto


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["label"])
def test_crypto_matches_the_official_vectors(v: dict[str, Any]) -> None:
    cipher = WeComCipher(v["encoding_aes_key"])
    assert signature(v["token"], v["timestamp"], v["nonce"], v["encrypt"]) == v["msg_signature"]
    assert signature_ok(v["msg_signature"].upper(), v["token"], v["timestamp"], v["nonce"], v["encrypt"])
    plaintext, receive_id = cipher.decrypt(v["encrypt"])
    assert (plaintext, receive_id) == (v["expected_plaintext"], v["receive_id"])
    # with the sample's own random prefix, encrypting reproduces the sample byte for byte (32-byte PKCS#7)
    prefix, _, _ = cipher.decrypt_raw(v["encrypt"])
    assert cipher.encrypt(plaintext, receive_id, random_prefix=prefix) == v["encrypt"]


def test_crypto_round_trip_padding_and_refusals() -> None:
    cipher = WeComCipher(AES)
    for text in ("", "x", "你好" * 50, "a" * 12):  # 12 + 20 header bytes + 0 id = one whole 32-byte block
        enc = cipher.encrypt(text, "")
        assert len(base64.b64decode(enc)) % 32 == 0
        assert cipher.decrypt(enc) == (text, "")
    assert len(base64.b64decode(cipher.encrypt("a" * 12, ""))) == 64  # a full block of padding
    assert "jWmYm" not in repr(cipher)
    for junk in ("not base64!", "", "QUJD", "A" * 44):
        with pytest.raises(CryptoError):
            cipher.decrypt(junk)
    with pytest.raises(CryptoError):
        aes_key("short")
    with pytest.raises(CryptoError):
        cipher.encrypt("x", "", random_prefix=b"123")


def test_the_products_crypto_and_the_emulators_agree() -> None:
    product = WeComCrypto(TOKEN, AES, CORP)
    params, body = encrypt_callback(
        "<xml><Content>同意</Content></xml>",
        token=TOKEN,
        aes_key=AES,
        corp_id=CORP,
        timestamp="1700000000",
        nonce="42",
        agent_id=AGENT,
    )
    encrypt = parse_xml(body).findtext("Encrypt") or ""
    assert parse_xml(body).findtext("ToUserName") == CORP and parse_xml(body).findtext("AgentID") == str(
        AGENT
    )
    got = product.verify_and_decrypt(params["msg_signature"], params["timestamp"], params["nonce"], encrypt)
    assert got == "<xml><Content>同意</Content></xml>"
    reply, sig = product.encrypt("<xml>回复</xml>", "7", "1700000001")
    assert signature_ok(sig, TOKEN, "1700000001", "7", reply)
    assert WeComCipher(AES).decrypt(reply) == ("<xml>回复</xml>", CORP)
    with pytest.raises(CallbackRefused):  # addressed to another corp
        product.decrypt(WeComCipher(AES).encrypt("x", "other-corp"))


# ---------------------------------------------------------------- API


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> WeComEmulator:
    return WeComEmulator(
        corp_id=CORP, apps={AGENT: SECRET, 1000003: "other-secret"}, clock=clock, org=ORG, seed=7
    )


@pytest.fixture
async def http(aiohttp_client: Any, emulator: WeComEmulator) -> TestClient[web.Request, web.Application]:
    client: TestClient[web.Request, web.Application] = await aiohttp_client(emulator.app())
    return client


@pytest.fixture
def api(http: TestClient[web.Request, web.Application]) -> Api:
    async def call(
        method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        resp = await http.request(method, path, params=params or {}, json=body)
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result

    return call


async def token_of(api: Api, secret: str = SECRET) -> str:
    got = await api("GET", "/cgi-bin/gettoken", {"corpid": CORP, "corpsecret": secret})
    assert got["errcode"] == 0 and got["expires_in"] == 7200
    return str(got["access_token"])


def text(to: str = "zhangsan", content: str = "hi", agentid: int = AGENT) -> dict[str, Any]:
    return {"touser": to, "msgtype": "text", "agentid": agentid, "text": {"content": content}}


def card(**over: Any) -> dict[str, Any]:
    template: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": {"title": "请假审批", "desc": "张三 2 天"},
        "task_id": "ticket_1-a@b",
        "button_list": [
            {"text": "同意", "style": 1, "key": "approve"},
            {"text": "驳回", "style": 2, "key": "reject"},
        ],
    }
    template.update(over)
    return {"touser": "zhangsan", "msgtype": "template_card", "agentid": AGENT, "template_card": template}


async def send(api: Api, token: str, body: dict[str, Any]) -> dict[str, Any]:
    return await api("POST", "/cgi-bin/message/send", {"access_token": token}, body)


async def test_gettoken_secrets_and_token_lifetime(
    api: Api, emulator: WeComEmulator, clock: FakeClock
) -> None:
    bad = await api("GET", "/cgi-bin/gettoken", {"corpid": CORP, "corpsecret": "wrong"})
    assert bad["errcode"] == 40001 and "access_token" not in bad
    assert (await api("GET", "/cgi-bin/gettoken", {"corpid": "nope", "corpsecret": SECRET}))[
        "errcode"
    ] == 40013
    assert (await api("GET", "/cgi-bin/gettoken", {"corpid": CORP}))["errcode"] == 41004
    token = await token_of(api)
    clock.advance(seconds=100)
    again = await api("GET", "/cgi-bin/gettoken", {"corpid": CORP, "corpsecret": SECRET})
    assert again["access_token"] == token and again["expires_in"] == 7100  # same token within validity
    assert await token_of(api, "other-secret") != token  # one token per app
    assert (await send(api, token, text()))["errcode"] == 0
    clock.advance(seconds=7100)
    assert (await send(api, token, text()))["errcode"] == 42001
    fresh = await token_of(api)
    assert fresh != token and (await send(api, fresh, text()))["errcode"] == 0
    emulator.expire_all_tokens()
    assert (await send(api, fresh, text()))["errcode"] == 42001
    newer = await token_of(api)
    emulator.revoke_all_tokens()
    assert (await send(api, newer, text()))["errcode"] == 40014
    assert (await api("POST", "/cgi-bin/message/send", {}, text()))["errcode"] == 41001
    assert (await send(api, "made-up", text()))["errcode"] == 40014
    assert emulator.records.gettoken_calls == 8
    assert [r.errcode for r in emulator.records.token_requests[:3]] == [40001, 40013, 41004]


async def test_send_text_answers_and_records(api: Api, emulator: WeComEmulator) -> None:
    token = await token_of(api)
    got = await send(api, token, text("zhangsan|ghost|lisi", "你好"))
    assert got["errcode"] == 0 and got["errmsg"] == "ok" and got["invaliduser"] == "ghost"
    assert got["msgid"] and "response_code" not in got
    [msg] = emulator.records.messages
    assert (
        msg.msgid == got["msgid"]
        and msg.delivered_to == ("zhangsan", "lisi")
        and msg.invaliduser == ("ghost",)
    )
    assert msg.body["text"]["content"] == "你好"
    assert (await send(api, token, text("ghost|nobody")))["errcode"] == 81013
    assert (await send(api, token, {**text(), "msgtype": "voice"}))["errcode"] == 40008
    assert (await send(api, token, text(agentid=1000003)))["errcode"] == 40056
    assert (await send(api, token, {k: v for k, v in text().items() if k != "agentid"}))["errcode"] == 41011
    assert (await send(api, token, text(content="")))["errcode"] == 44004
    assert (await send(api, token, text(content="长" * 700)))["errcode"] == 45002
    party = await send(api, token, {**text(to=""), "toparty": "2"})
    assert party["errcode"] == 0 and emulator.records.messages[-1].delivered_to == ("lisi", "wangwu")
    resp = await api("POST", "/cgi-bin/message/send", {"access_token": token}, None)
    assert resp["errcode"] == 47001


@pytest.mark.parametrize(
    ("over", "errcode"),
    [
        ({"card_type": "fancy"}, 42027),
        ({"button_list": [{"text": str(i), "key": f"k{i}"} for i in range(7)]}, 42028),
        ({"button_list": [{"text": "a", "key": "same"}, {"text": "b", "key": "same"}]}, 42029),
        ({"button_list": [{"text": "a", "key": "k" * 1025}]}, 42030),
        ({"button_list": [{"text": "a", "key": "k", "style": 5}]}, 42031),
        ({"horizontal_content_list": [{"keyname": "k", "value": "v"}] * 7}, 42032),
        ({"button_list": []}, 42033),
        ({"task_id": None}, 42034),
        ({"task_id": "has space"}, 42014),
        ({"task_id": "中文"}, 42014),
        ({"task_id": "x" * 129}, 42014),
        ({"card_type": "text_notice", "button_list": None}, 42045),
    ],
)
async def test_template_card_field_errors(
    api: Api, emulator: WeComEmulator, over: dict[str, Any], errcode: int
) -> None:
    token = await token_of(api)
    body = card(**over)
    if over.get("task_id", "") is None:
        del body["template_card"]["task_id"]
    got = await send(api, token, body)
    assert got["errcode"] == errcode, got
    assert emulator.records.messages == []


async def test_template_cards_task_id_uniqueness_and_response_codes(
    api: Api, emulator: WeComEmulator
) -> None:
    token = await token_of(api)
    first = await send(api, token, card(task_id="x" * 128))
    assert first["errcode"] == 0 and first["response_code"]
    assert (await send(api, token, card(task_id="x" * 128)))["errcode"] == 42035  # unique within the app
    other_app = await token_of(api, "other-secret")
    assert (await send(api, other_app, {**card(task_id="x" * 128), "agentid": 1000003}))["errcode"] == 0
    notice = card(
        card_type="text_notice", card_action={"type": 1, "url": "https://example.invalid"}, task_id="n1"
    )
    got = await send(api, token, notice)
    assert got["errcode"] == 0 and "response_code" not in got
    assert emulator.records.messages[0].response_code == first["response_code"]


async def test_response_code_is_single_use(api: Api, emulator: WeComEmulator) -> None:
    token = await token_of(api)
    code = (await send(api, token, card()))["response_code"]
    update = {
        "userids": ["zhangsan"],
        "agentid": AGENT,
        "response_code": code,
        "button": {"replace_name": "已同意"},
    }
    url = "/cgi-bin/message/update_template_card"
    ok = await api("POST", url, {"access_token": token}, update)
    assert ok["errcode"] == 0 and ok["invaliduser"] == []
    again = await api("POST", url, {"access_token": token}, update)
    assert again["errcode"] == 60140 and "used" in again["errmsg"]
    unknown = await api("POST", url, {"access_token": token}, {**update, "response_code": "nope"})
    assert unknown["errcode"] == 60140
    [rec] = emulator.records.updates
    assert (
        rec.response_code == code
        and rec.userids == ("zhangsan",)
        and rec.body["button"]["replace_name"] == "已同意"
    )
    # each click carries a fresh code
    click_code = emulator.issue_click_response_code(rec.msgid)
    whole = {
        **update,
        "response_code": click_code,
        "button": None,
        "template_card": {**card()["template_card"], "replace_text": "已处理"},
    }
    assert (await api("POST", url, {"access_token": token}, whole))["errcode"] == 0
    neither = {**update, "response_code": emulator.issue_click_response_code(rec.msgid), "button": {}}
    assert (await api("POST", url, {"access_token": token}, neither))["errcode"] == 40058


async def test_response_code_expires_after_24_hours(
    api: Api, emulator: WeComEmulator, clock: FakeClock
) -> None:
    token = await token_of(api)
    early = (await send(api, token, card(task_id="t1")))["response_code"]
    late = (await send(api, token, card(task_id="t2")))["response_code"]
    url = "/cgi-bin/message/update_template_card"
    clock.advance(hours=23, minutes=59)
    token = await token_of(api)
    body = {"agentid": AGENT, "button": {"replace_name": "已同意"}}
    assert (await api("POST", url, {"access_token": token}, {**body, "response_code": early}))["errcode"] == 0
    clock.advance(minutes=1)
    expired = await api("POST", url, {"access_token": token}, {**body, "response_code": late})
    assert expired["errcode"] == 60140 and "expired" in expired["errmsg"]
    assert len(emulator.records.updates) == 1


async def test_beyond_30_a_minute_to_one_person_is_silently_dropped(
    api: Api, emulator: WeComEmulator, clock: FakeClock
) -> None:
    token = await token_of(api)
    answers = [
        await send(api, token, text("zhangsan|lisi" if i == 30 else "zhangsan", f"#{i}")) for i in range(31)
    ]
    assert all(a["errcode"] == 0 and a["msgid"] for a in answers)  # WeCom says ok to all of them
    [drop] = emulator.records.drops
    assert drop.userid == "zhangsan" and drop.msgid == answers[30]["msgid"] and "30/min" in drop.reason
    assert emulator.records.messages[-1].delivered_to == ("lisi",)  # the other recipient still gets it
    assert len(emulator.records.delivered_to("zhangsan")) == 30
    clock.advance(seconds=59)
    assert (await send(api, token, text()))["errcode"] == 0 and len(emulator.records.drops) == 2
    clock.advance(seconds=1)
    assert (await send(api, token, text()))["errcode"] == 0 and len(emulator.records.drops) == 2
    assert len(emulator.records.delivered_to("zhangsan")) == 31


async def test_hourly_limit(clock: FakeClock, aiohttp_client: Any) -> None:
    emu = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, org=ORG, per_minute=5, per_hour=8)
    http: TestClient[web.Request, web.Application] = await aiohttp_client(emu.app())
    token = (
        await (await http.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET})).json()
    )["access_token"]
    for _ in range(3):
        for _ in range(5):
            resp = await http.post("/cgi-bin/message/send", params={"access_token": token}, json=text())
            assert (await resp.json())["errcode"] == 0
        clock.advance(minutes=1)
    assert len(emu.records.drops) == 7 and "8/hour" in emu.records.drops[-1].reason


async def test_chaos_switches(api: Api, emulator: WeComEmulator, clock: FakeClock) -> None:
    token = await token_of(api)
    emulator.fail_next(2, -1, path="/cgi-bin/message/send")
    assert (await api("GET", "/cgi-bin/user/get", {"access_token": token, "userid": "lisi"}))["errcode"] == 0
    assert [(await send(api, token, text()))["errcode"] for _ in range(3)] == [-1, -1, 0]
    emulator.fail_next(1, 45009)
    assert (await api("GET", "/cgi-bin/department/list", {"access_token": token}))["errcode"] == 45009
    assert [f.errcode for f in emulator.records.failures] == [-1, -1, 45009]

    def outcomes(seed: int) -> list[bool]:
        emu = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, seed=seed)
        emu.fail_ratio(0.5)
        result = []
        for _ in range(40):
            try:
                emu._chaos_check("/cgi-bin/message/send")
                result.append(True)
            except Exception:
                result.append(False)
        return result

    assert outcomes(3) == outcomes(3) and 5 < outcomes(3).count(False) < 35
    emulator.fail_ratio(1.0, 45033, path="/cgi-bin/user/list")
    assert (await api("GET", "/cgi-bin/user/list", {"access_token": token, "department_id": 1}))[
        "errcode"
    ] == 45033
    assert (await send(api, token, text()))["errcode"] == 0
    with pytest.raises(ValueError):
        emulator.fail_ratio(2.0)


async def test_trusted_ips_and_permissions(api: Api, emulator: WeComEmulator) -> None:
    token = await token_of(api)
    emulator.forbidden_paths.add("/cgi-bin/user/get")
    assert (await api("GET", "/cgi-bin/user/get", {"access_token": token, "userid": "lisi"}))[
        "errcode"
    ] == 48002
    emulator.trusted_ips = {"10.1.2.3"}
    refused = await api("GET", "/cgi-bin/gettoken", {"corpid": CORP, "corpsecret": SECRET})
    assert refused["errcode"] == 60020 and "from ip: 127.0.0.1" in refused["errmsg"]
    emulator.trusted_ips = {"127.0.0.1"}
    assert (await send(api, token, text()))["errcode"] == 0


async def test_directory(api: Api) -> None:
    token = await token_of(api)
    user = await api("GET", "/cgi-bin/user/get", {"access_token": token, "userid": "lisi"})
    assert user["errcode"] == 0 and user["name"] == "李四" and user["department"] == [2]
    assert (await api("GET", "/cgi-bin/user/get", {"access_token": token, "userid": "x"}))["errcode"] == 60111
    direct = await api("GET", "/cgi-bin/user/list", {"access_token": token, "department_id": 2})
    assert [u["userid"] for u in direct["userlist"]] == ["lisi"]
    deep = await api(
        "GET", "/cgi-bin/user/list", {"access_token": token, "department_id": 2, "fetch_child": 1}
    )
    assert [u["userid"] for u in deep["userlist"]] == ["lisi", "wangwu"]
    assert (await api("GET", "/cgi-bin/user/list", {"access_token": token, "department_id": 9}))[
        "errcode"
    ] == 60003
    every = await api("GET", "/cgi-bin/department/list", {"access_token": token})
    assert [d["id"] for d in every["department"]] == [1, 2, 3]
    sub = await api("GET", "/cgi-bin/department/list", {"access_token": token, "id": 2})
    assert [d["name"] for d in sub["department"]] == ["IT", "运维"]


# ---------------------------------------------------------------- callbacks


class Bot:
    """A minimal bot endpoint using the product's crypto, reading the raw query as the docs say."""

    def __init__(self) -> None:
        self.crypto = WeComCrypto(TOKEN, AES, CORP)
        self.received: list[tuple[dict[str, str], str]] = []
        self.statuses: list[int] = []  # answers to give, in order (then 200)
        self.hang_first = False
        self.never = asyncio.Event()
        self.raw_queries: list[str] = []

    @staticmethod
    def query(request: web.Request) -> dict[str, str]:
        pairs = (p.split("=", 1) for p in request.query_string.split("&") if "=" in p)
        return {k: urllib.parse.unquote(v) for k, v in pairs}  # percent-decoding only: '+' stays '+'

    async def get(self, request: web.Request) -> web.Response:
        q = self.query(request)
        self.raw_queries.append(request.query_string)
        try:
            echo = self.crypto.verify_and_decrypt(
                q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"]
            )
        except CallbackRefused as exc:
            return web.Response(status=exc.status, text=exc.reason)
        return web.Response(text=echo)

    async def post(self, request: web.Request) -> web.Response:
        if self.hang_first:
            self.hang_first = False
            await self.never.wait()
        q = self.query(request)
        root = parse_xml(await request.text())
        assert root.findtext("ToUserName") == CORP
        try:
            plain = self.crypto.verify_and_decrypt(
                q["msg_signature"], q["timestamp"], q["nonce"], root.findtext("Encrypt") or ""
            )
        except CallbackRefused as exc:
            return web.Response(status=exc.status, text=exc.reason)
        self.received.append((q, plain))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="" if status == 200 else "try later")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/wecom/callback", self.get)
        app.router.add_post("/wecom/callback", self.post)
        return app


@pytest.fixture
async def bot_url(aiohttp_server: Any) -> AsyncIterator[tuple[Bot, str, aiohttp.ClientSession]]:
    bot = Bot()
    server: TestServer = await aiohttp_server(bot.app())
    async with aiohttp.ClientSession() as session:
        yield bot, str(server.make_url("/wecom/callback")), session


async def test_send_callback_is_what_the_product_decrypts(
    bot_url: tuple[Bot, str, aiohttp.ClientSession],
) -> None:
    bot, url, session = bot_url
    xml = text_message_xml(
        corp_id=CORP,
        from_user="zhangsan",
        content="请假 2 天 ]]> <b>",
        msg_id=4561255354251345929,
        agent_id=AGENT,
        create_time=1700000000,
    )
    status, body = await send_callback(
        session, url, xml, token=TOKEN, aes_key=AES, corp_id=CORP, timestamp="1700000000", nonce="1372623149"
    )
    assert (status, body) == (200, "")
    [(query, plain)] = bot.received
    assert plain == xml and query["timestamp"] == "1700000000" and query["nonce"] == "1372623149"
    root = parse_xml(plain)
    assert root.findtext("Content") == "请假 2 天 ]]> <b>" and root.findtext("MsgId") == "4561255354251345929"
    bad = await send_callback(
        session, url, xml, token="wrong", aes_key=AES, corp_id=CORP, timestamp="1", nonce="2"
    )
    assert bad.status == 403


@pytest.mark.parametrize("echo", ["1616140317555161061", "héllo+/=", "x"])
async def test_verify_url_handshake(bot_url: tuple[Bot, str, aiohttp.ClientSession], echo: str) -> None:
    bot, url, session = bot_url
    check = await verify_url(
        session,
        url,
        token=TOKEN,
        aes_key=AES,
        corp_id=CORP,
        timestamp="1409659589",
        nonce="263014780",
        echo=echo,
    )
    assert check.ok and check.body == echo
    assert "+" not in bot.raw_queries[-1]  # base64 '+' travels as %2B
    wrong = await verify_url(session, url, token="nope", aes_key=AES, corp_id=CORP)
    assert wrong.status == 403 and not wrong.ok


async def test_retrying_callback_on_non_200_resends_the_same_post(
    bot_url: tuple[Bot, str, aiohttp.ClientSession],
) -> None:
    bot, url, session = bot_url
    bot.statuses = [500, 503]
    delays: list[float] = []

    async def sleep(d: float) -> None:
        delays.append(d)

    xml = template_card_event_xml(
        corp_id=CORP,
        from_user="lisi",
        create_time=1700000000,
        event_key="approve",
        task_id="t1",
        response_code="rc1",
        agent_id=AGENT,
    )
    delivery = await retrying_send_callback(
        session, url, xml, token=TOKEN, aes_key=AES, corp_id=CORP, delay=2.5, sleep=sleep
    )
    assert delivery.delivered and [a.status for a in delivery.attempts] == [500, 503, 200]
    assert delays == [2.5, 2.5]
    assert len({q["msg_signature"] + q["nonce"] for q, _ in bot.received}) == 1  # WeCom resends the same POST
    event = parse_xml(bot.received[0][1])
    assert [
        event.findtext(k)
        for k in ("Event", "EventKey", "TaskId", "ResponseCode", "FromUserName", "CreateTime")
    ] == ["template_card_event", "approve", "t1", "rc1", "lisi", "1700000000"]
    bot.statuses = [500, 500, 500]
    failed = await retrying_send_callback(
        session, url, xml, token=TOKEN, aes_key=AES, corp_id=CORP, sleep=sleep
    )
    assert not failed.delivered and len(failed.attempts) == 3


async def test_retrying_callback_after_a_missed_deadline(
    bot_url: tuple[Bot, str, aiohttp.ClientSession],
) -> None:
    bot, url, session = bot_url
    bot.hang_first = True
    slept: list[float] = []

    async def sleep(d: float) -> None:
        slept.append(d)

    xml = text_message_xml(
        corp_id=CORP, from_user="zhangsan", content="hi", msg_id=1, agent_id=AGENT, create_time=1
    )
    delivery = await retrying_send_callback(
        session, url, xml, token=TOKEN, aes_key=AES, corp_id=CORP, deadline=0.05, sleep=sleep
    )
    first, second = delivery.attempts
    assert first.status is None and "0.05" in first.error
    assert second.status == 200 and delivery.delivered and slept == [0.0]
    bot.never.set()
