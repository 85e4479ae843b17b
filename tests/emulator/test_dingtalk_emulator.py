"""The DingTalk emulator: its crypto against DingTalk's vector and the product's adapter, its API
rules (tokens, cards and deliverResults, robot sends, session webhooks, work notifications,
contacts, chaos, the monthly quota) and its three callback senders, whose signatures are checked
here with formulas written independently of the emulator."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.dingtalk.crypto import CallbackRefused, DingTalkCrypto
from bot.dingtalk.crypto import signature as product_signature
from emulator.__main__ import build_app, parser
from emulator.dingtalk import (
    CryptoError,
    DingTalkCipher,
    DingTalkEmulator,
    card_callback_body,
    card_callback_signature,
    encrypt_event,
    open_event_reply,
    retrying_send_event,
    robot_sign,
    robot_text_message,
    send_card_callback,
    send_event,
    send_robot_message,
    signature,
    verify_callback_url,
)
from tests.fakes import FakeClock

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "bot" / "vectors" / "dingtalk.json").read_text(encoding="utf-8")
)["vectors"]
APP_KEY = "dingappkey123"
APP_SECRET = "app-secret-xyz"
ROBOT = "dingappkey123"
CORP = "dingcorp42"
AGENT = 3000001
TOKEN = "evToken"
AES = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
ORG: dict[str, list[dict[str, Any]]] = {
    "departments": [
        {"dept_id": 1, "name": "总部"},
        {"dept_id": 2, "name": "IT", "parent_id": 1},
        {"dept_id": 3, "name": "运维", "parent_id": 2},
        {"dept_id": 4, "name": "HR", "parent_id": 1},
    ],
    "users": [
        {
            "userid": "zhangsan",
            "name": "张三",
            "mobile": "13800000001",
            "email": "zs@example.cn",
            "dept_id_list": [1],
            "leader_in_dept": [{"dept_id": 1, "leader": True}],
        },
        {"userid": "lisi", "name": "李四", "dept_id_list": [2]},
        {"userid": "wangwu", "name": "王五", "dept_id_list": [2, 3]},
        {"userid": "zhaoliu", "name": "赵六", "dept_id_list": [2]},
        {"userid": "gone", "name": "离职", "dept_id_list": [2], "active": False},
    ],
    "groups": [{"open_conversation_id": "cidGroup1", "name": "IT 群", "members": ["lisi", "wangwu"]}],
}

Call = Callable[..., Awaitable[tuple[int, Any]]]


# ---------------------------------------------------------------- crypto


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["label"])
def test_crypto_matches_dingtalks_vector(v: dict[str, Any]) -> None:
    cipher = DingTalkCipher(v["encoding_aes_key"])
    assert signature(v["token"], v["timestamp"], v["nonce"], v["encrypt"]) == v["signature"]
    assert cipher.decrypt(v["encrypt"]) == (v["expected_plaintext"], v["owner_key"])
    prefix, _, _ = cipher.decrypt_raw(v["encrypt"])
    assert cipher.encrypt(v["expected_plaintext"], v["owner_key"], random_prefix=prefix) == v["encrypt"]
    assert v["encoding_aes_key"][:6] not in repr(cipher)


def test_signature_formula_independently() -> None:
    parts = ["tok", "1700000000000", "nonce1", "ENC+/="]
    expected = hashlib.sha1("".join(sorted(parts)).encode(), usedforsecurity=False).hexdigest()
    assert signature(*parts) == expected == product_signature(*parts)


@pytest.mark.parametrize("spelling", ["signature", "msg_signature"])
def test_encrypt_event_is_what_the_product_decrypts(spelling: Any) -> None:
    event = {"EventType": "user_add_org", "UserId": ["张三"], "TimeStamp": "1700000000000"}
    params, body = encrypt_event(
        event,
        token=TOKEN,
        aes_key=AES,
        owner_key=APP_KEY,
        timestamp="1700000000000",
        nonce="n1",
        spelling=spelling,
    )
    ts_name = "timestamp" if spelling == "signature" else "timeStamp"
    assert set(params) == {spelling, ts_name, "nonce"} and set(body) == {"encrypt"}
    assert len(base64.b64decode(body["encrypt"])) % 32 == 0
    product = DingTalkCrypto(TOKEN, AES, APP_KEY)
    plain = product.verify_and_decrypt(params[spelling], params[ts_name], params["nonce"], body["encrypt"])
    assert json.loads(plain) == event
    with pytest.raises(CallbackRefused):  # for another app
        DingTalkCrypto(TOKEN, AES, "other-key").decrypt(body["encrypt"])


def test_open_event_reply_checks_signature_and_owner() -> None:
    product = DingTalkCrypto(TOKEN, AES, APP_KEY)
    encrypt = product.encrypt("success")
    reply = {
        "msg_signature": product_signature(TOKEN, "123", "abc", encrypt),
        "timeStamp": "123",
        "nonce": "abc",
        "encrypt": encrypt,
    }
    assert open_event_reply(reply, token=TOKEN, aes_key=AES, owner_key=APP_KEY) == "success"
    with pytest.raises(CryptoError, match="signature"):
        open_event_reply({**reply, "nonce": "other"}, token=TOKEN, aes_key=AES, owner_key=APP_KEY)
    with pytest.raises(CryptoError, match="owner"):
        open_event_reply(reply, token=TOKEN, aes_key=AES, owner_key="someone-else")
    with pytest.raises(CryptoError, match="timeStamp"):
        open_event_reply(
            {k: v for k, v in reply.items() if k != "timeStamp"}, token=TOKEN, aes_key=AES, owner_key=APP_KEY
        )


def test_robot_sign_and_card_signature_formulas_independently() -> None:
    ts, secret = "1700000000123", "s3cr3t"
    mac = hmac.new(secret.encode(), (ts + "\n" + secret).encode(), hashlib.sha256).digest()
    assert robot_sign(ts, secret) == base64.b64encode(mac).decode()
    mac2 = hmac.new(b"api-secret", ts.encode(), hashlib.sha256).digest()
    assert card_callback_signature(ts, "api-secret") == base64.b64encode(mac2).decode()


# ---------------------------------------------------------------- API fixtures


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> DingTalkEmulator:
    return DingTalkEmulator(APP_KEY, APP_SECRET, ROBOT, clock, org=ORG, corp_id=CORP, agent_id=AGENT, seed=7)


@pytest.fixture
async def http(aiohttp_client: Any, emulator: DingTalkEmulator) -> TestClient[web.Request, web.Application]:
    client: TestClient[web.Request, web.Application] = await aiohttp_client(emulator.app())
    emulator.base_url = str(client.make_url("")).rstrip("/")
    return client


@pytest.fixture
def call(http: TestClient[web.Request, web.Application]) -> Call:
    """(status, parsed JSON or text) of one request; `token` goes where the path's API wants it."""

    async def do(
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        headers: dict[str, str] = {}
        query = dict(params or {})
        if token is not None:
            if path.startswith("/v1.0/"):
                headers["x-acs-dingtalk-access-token"] = token
            else:
                query["access_token"] = token
        resp = await http.request(method, path, params=query, json=body, headers=headers)
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text

    return do


async def token_of(call: Call) -> str:
    status, got = await call("POST", "/v1.0/oauth2/accessToken", {"appKey": APP_KEY, "appSecret": APP_SECRET})
    assert status == 200 and got["expireIn"] == 7200, got
    return str(got["accessToken"])


def card_body(
    out_track_id: str = "ticket_1_zhangsan", space: str = "IM_ROBOT.zhangsan", **over: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "outTrackId": out_track_id,
        "cardTemplateId": "tpl.schema",
        "cardData": {"cardParamMap": {"title": "请假审批", "fields": json.dumps([{"k": "天数", "v": "2"}])}},
        "openSpaceId": f"dtv1.card//{space}",
        "callbackType": "HTTP",
        "callbackRouteKey": "ticketbot",
        "imRobotOpenSpaceModel": {"supportForward": True},
        "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": ROBOT},
        "userIdType": 1,
    }
    body.update(over)
    return body


CREATE = "/v1.0/card/instances/createAndDeliver"


# ---------------------------------------------------------------- tokens


async def test_access_token_lifetime_and_errors(
    call: Call, emulator: DingTalkEmulator, clock: FakeClock
) -> None:
    status, bad = await call("POST", "/v1.0/oauth2/accessToken", {"appKey": APP_KEY, "appSecret": "wrong"})
    assert status == 400 and bad["code"] == "invalidClientIdOrSecret" and bad["requestid"] and bad["message"]
    assert "accessToken" not in bad
    status, missing = await call("POST", "/v1.0/oauth2/accessToken", {"appKey": APP_KEY})
    assert (status, missing["code"]) == (400, "MissingappSecret")
    status, nobody = await call("POST", "/v1.0/oauth2/accessToken")
    assert (status, nobody["code"]) == (400, "Missingbody")
    token = await token_of(call)
    clock.advance(seconds=100)
    status, again = await call(
        "POST", "/v1.0/oauth2/accessToken", {"appKey": APP_KEY, "appSecret": APP_SECRET}
    )
    assert again == {"accessToken": token, "expireIn": 7100}  # the same token while it is valid
    status, old = await call("GET", "/gettoken", params={"appkey": APP_KEY, "appsecret": APP_SECRET})
    assert old["errcode"] == 0 and old["access_token"] == token and old["expires_in"] == 7100
    status, old_bad = await call("GET", "/gettoken", params={"appkey": APP_KEY, "appsecret": "x"})
    assert status == 200 and old_bad["errcode"] == 40089 and "access_token" not in old_bad
    assert [(r.style, r.error) for r in emulator.records.token_requests] == [
        ("v1.0", "invalidClientIdOrSecret"),
        ("v1.0", "MissingappSecret"),
        ("v1.0", "Missingbody"),
        ("v1.0", ""),
        ("v1.0", ""),
        ("oapi", ""),
        ("oapi", "40089"),
    ]
    assert emulator.records.token_calls == 7


@pytest.mark.parametrize("token_status", [400, 401])
async def test_the_token_header_is_checked(
    call: Call, emulator: DingTalkEmulator, clock: FakeClock, token_status: int
) -> None:
    emulator.token_error_status = token_status
    reg = {"callbackRouteKey": "k", "callbackUrl": "http://bot.invalid/cb", "apiSecret": "s"}
    path = "/v1.0/card/callbacks/register"
    status, missing = await call("POST", path, reg)
    assert status == token_status and missing["code"] == "InvalidAuthentication"
    assert "x-acs-dingtalk-access-token" in missing["message"]
    status, made_up = await call("POST", path, reg, token="made-up")
    assert (status, made_up["code"], made_up["message"]) == (
        token_status,
        "InvalidAuthentication",
        "不合法的access_token",
    )
    token = await token_of(call)
    assert (await call("POST", path, reg, token=token))[0] == 200
    clock.advance(seconds=7200)
    status, expired = await call("POST", path, reg, token=token)
    assert status == token_status and "过期" in expired["message"]
    fresh = await token_of(call)
    assert fresh != token
    emulator.expire_all_tokens()
    assert (await call("POST", path, reg, token=fresh))[0] == token_status
    newer = await token_of(call)
    emulator.revoke_all_tokens()
    assert (await call("POST", path, reg, token=newer))[1]["message"] == "不合法的access_token"
    assert newer in emulator.issued_tokens() and len(emulator.issued_tokens()) == 3
    assert [f.status for f in emulator.records.failures] == [token_status] * 5


async def test_oapi_token_errors_and_permissions(
    call: Call, emulator: DingTalkEmulator, clock: FakeClock
) -> None:
    path = "/topapi/v2/department/get"
    assert (await call("POST", path, {"dept_id": 1}))[1]["errcode"] == 41001
    assert (await call("POST", path, {"dept_id": 1}, token="nope"))[1]["errcode"] == 40014
    token = await token_of(call)
    assert (await call("POST", path, {"dept_id": 1}, token=token))[1]["errcode"] == 0
    emulator.forbidden_paths.add(path)
    status, denied = await call("POST", path, {"dept_id": 1}, token=token)
    assert status == 200 and denied["errcode"] == 88 and denied["sub_code"] == "60011"
    emulator.forbidden_paths.add(CREATE)
    status, denied2 = await call("POST", CREATE, card_body(), token=token)
    assert (status, denied2["code"]) == (403, "Forbidden.AccessDenied.AccessTokenPermissionDenied")
    clock.advance(hours=2)
    assert (await call("POST", path, {"dept_id": 1}, token=token))[1]["errcode"] == 42001


# ---------------------------------------------------------------- cards


async def test_create_and_deliver_answers_deliver_results(call: Call, emulator: DingTalkEmulator) -> None:
    token = await token_of(call)
    status, ok = await call("POST", CREATE, card_body(), token=token)
    assert status == 200 and ok["success"] is True
    assert ok["result"]["outTrackId"] == "ticket_1_zhangsan"
    [result] = ok["result"]["deliverResults"]
    assert result["spaceType"] == "IM_ROBOT" and result["spaceId"] == "zhangsan" and result["success"] is True
    [card] = emulator.records.cards
    assert emulator.records.card("ticket_1_zhangsan") is card
    assert card.template_id == "tpl.schema" and card.param_map["title"] == "请假审批"
    assert card.callback_route_key == "ticketbot" and card.callback_type == "HTTP"
    assert card.open_space_id == "dtv1.card//IM_ROBOT.zhangsan" and card.delivered_to == ("zhangsan",)
    assert emulator.card_params("ticket_1_zhangsan")["title"] == "请假审批"
    # an unknown (or departed) user: top-level success, the delivery itself failed
    for n, user in enumerate(["ghost", "gone"]):
        status, failed = await call("POST", CREATE, card_body(f"t{n}", f"IM_ROBOT.{user}"), token=token)
        assert status == 200 and failed["success"] is True
        [res] = failed["result"]["deliverResults"]
        assert res["success"] is False and user in res["errorMsg"]
    # several spaces at once, a group among them, with private data
    both = card_body(
        "t_multi",
        "IM_GROUP.cidGroup1;IM_ROBOT.lisi;IM_GROUP.cidUnknown",
        imGroupOpenDeliverModel={"robotCode": ROBOT},
        privateData={"lisi": {"cardParamMap": {"mine": "1"}}},
    )
    status, multi = await call("POST", CREATE, both, token=token)
    assert [(r["spaceType"], r["spaceId"], r["success"]) for r in multi["result"]["deliverResults"]] == [
        ("IM_GROUP", "cidGroup1", True),
        ("IM_ROBOT", "lisi", True),
        ("IM_GROUP", "cidUnknown", False),
    ]
    assert emulator.card_private_data("t_multi") == {"lisi": {"cardParamMap": {"mine": "1"}}}
    assert emulator.usage.messages == 3  # zhangsan, the group, lisi


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"outTrackId": None}, "MissingoutTrackId"),
        ({"cardTemplateId": ""}, "MissingcardTemplateId"),
        ({"cardData": None}, "MissingcardData"),
        ({"cardData": {"cardParamMap": {"days": 2}}}, "InvalidParameter.cardData.cardParamMap"),
        ({"cardData": {"cardParamMap": {"list": ["a"]}}}, "InvalidParameter.cardData.cardParamMap"),
        ({"privateData": {"lisi": {"cardParamMap": {"n": 1}}}}, "InvalidParameter.privateData.cardParamMap"),
        ({"privateData": ["lisi"]}, "InvalidParameter.privateData"),
        ({"privateData": {"lisi": "x"}}, "InvalidParameter.privateData"),
        ({"cardData": {"cardParamMap": "x"}}, "InvalidParameter.cardData.cardParamMap"),
        ({"callbackRouteKey": 7}, "InvalidParameter.callbackRouteKey"),
        ({"openSpaceId": "IM_ROBOT.zhangsan"}, "InvalidParameter.openSpaceId"),
        ({"openSpaceId": "dtv1.card//IM_CHAT.zhangsan"}, "InvalidParameter.openSpaceId"),
        ({"openSpaceId": None}, "MissingopenSpaceId"),
        ({"imRobotOpenDeliverModel": None}, "MissingimRobotOpenDeliverModel"),
        ({"imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT"}}, "MissingimRobotOpenDeliverModel.robotCode"),
        ({"imRobotOpenDeliverModel": {"robotCode": "other"}}, "InvalidParameter.robotCode"),
        ({"openSpaceId": "dtv1.card//IM_GROUP.cidGroup1"}, "MissingimGroupOpenDeliverModel"),
        ({"callbackRouteKey": None}, "MissingcallbackRouteKey"),
        ({"callbackType": "PIGEON"}, "InvalidParameter.callbackType"),
    ],
)
async def test_create_and_deliver_refusals(
    call: Call, emulator: DingTalkEmulator, over: dict[str, Any], code: str
) -> None:
    token = await token_of(call)
    status, got = await call("POST", CREATE, card_body(**over), token=token)
    assert (status, got["code"]) == (400, code), got
    assert emulator.records.cards == [] and emulator.records.failures[-1].code == code


async def test_out_track_id_is_unique_and_stream_needs_no_route(
    call: Call, emulator: DingTalkEmulator
) -> None:
    token = await token_of(call)
    assert (await call("POST", CREATE, card_body(), token=token))[0] == 200
    status, dup = await call("POST", CREATE, card_body(), token=token)
    assert (status, dup["code"]) == (400, "InvalidParameter.outTrackId.duplicate")
    stream = card_body("t_stream", callbackType="STREAM", callbackRouteKey=None)
    assert (await call("POST", CREATE, stream, token=token))[0] == 200
    assert [c.out_track_id for c in emulator.records.cards] == ["ticket_1_zhangsan", "t_stream"]


async def test_update_card_by_key_or_whole(call: Call, emulator: DingTalkEmulator) -> None:
    token = await token_of(call)
    await call("POST", CREATE, card_body(), token=token)
    by_key = {
        "outTrackId": "ticket_1_zhangsan",
        "cardData": {"cardParamMap": {"status": "已同意"}},
        "privateData": {"zhangsan": {"cardParamMap": {"done": "true"}}},
        "cardUpdateOptions": {"updateCardDataByKey": True, "updatePrivateDataByKey": True},
    }
    status, ok = await call("PUT", "/v1.0/card/instances", by_key, token=token)
    assert (status, ok) == (200, {"success": True, "result": True})
    params = emulator.card_params("ticket_1_zhangsan")
    assert params["status"] == "已同意" and params["title"] == "请假审批"  # merged
    assert emulator.card_private_data("ticket_1_zhangsan") == {"zhangsan": {"cardParamMap": {"done": "true"}}}
    whole = {"outTrackId": "ticket_1_zhangsan", "cardData": {"cardParamMap": {"status": "已关闭"}}}
    assert (await call("PUT", "/v1.0/card/instances", whole, token=token))[0] == 200
    assert emulator.card_params("ticket_1_zhangsan") == {"status": "已关闭"}  # replaced
    first, second = emulator.records.card_updates
    assert (
        first.update_card_data_by_key
        and first.update_private_data_by_key
        and first.param_map == {"status": "已同意"}
    )
    assert not second.update_card_data_by_key and second.source == "api"
    status, unknown = await call("PUT", "/v1.0/card/instances", {**whole, "outTrackId": "nope"}, token=token)
    assert (status, unknown["code"]) == (404, "NotFound.outTrackId")
    status, bad = await call(
        "PUT", "/v1.0/card/instances", {**whole, "cardData": {"cardParamMap": {"n": 3}}}, token=token
    )
    assert (status, bad["code"]) == (400, "InvalidParameter.cardData.cardParamMap")
    status, empty = await call(
        "PUT", "/v1.0/card/instances", {"outTrackId": "ticket_1_zhangsan"}, token=token
    )
    assert (status, empty["code"]) == (400, "MissingcardData")
    assert len(emulator.records.card_updates) == 2
    assert emulator.usage.api_calls == 6 and emulator.usage.messages == 1  # updates are not messages


async def test_register_card_callback(call: Call, emulator: DingTalkEmulator) -> None:
    token = await token_of(call)
    path = "/v1.0/card/callbacks/register"
    reg = {
        "callbackRouteKey": "ticketbot",
        "callbackUrl": "https://bot.example/dingtalk/card",
        "apiSecret": "sec1",
    }
    status, ok = await call("POST", path, reg, token=token)
    assert status == 200 and ok == {
        "success": True,
        "result": {"callbackUrl": reg["callbackUrl"], "apiSecret": "sec1"},
    }
    assert (await call("POST", path, reg, token=token))[0] == 200  # the same registration again: fine
    moved = {**reg, "callbackUrl": "https://elsewhere.example/cb"}
    status, clash = await call("POST", path, moved, token=token)
    assert (status, clash["code"]) == (400, "InvalidParameter.callbackRouteKey.exists")
    assert (await call("POST", path, {**moved, "forceUpdate": True}, token=token))[0] == 200
    status, generated = await call(
        "POST", path, {"callbackRouteKey": "k2", "callbackUrl": "http://x.example/"}, token=token
    )
    assert status == 200 and len(generated["result"]["apiSecret"]) >= 16
    status, bad = await call("POST", path, {**reg, "callbackUrl": "ftp://x"}, token=token)
    assert (status, bad["code"]) == (400, "InvalidParameter.callbackUrl")
    assert [(r.route_key, r.url, r.force_update) for r in emulator.records.callback_registrations] == [
        ("ticketbot", "https://bot.example/dingtalk/card", False),
        ("ticketbot", "https://bot.example/dingtalk/card", False),
        ("ticketbot", "https://elsewhere.example/cb", True),
        ("k2", "http://x.example/", False),
    ]


# ---------------------------------------------------------------- robot batch send


BATCH = "/v1.0/robot/oToMessages/batchSend"


def batch(users: list[str], **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "robotCode": ROBOT,
        "userIds": users,
        "msgKey": "sampleText",
        "msgParam": json.dumps({"content": "你好"}),
    }
    body.update(over)
    return body


async def test_robot_batch_send(call: Call, emulator: DingTalkEmulator) -> None:
    token = await token_of(call)
    emulator.flow_controlled.add("wangwu")
    status, ok = await call(
        "POST", BATCH, batch(["zhangsan", "ghost", "wangwu", "gone", "lisi"]), token=token
    )
    assert status == 200 and ok["processQueryKey"]
    assert ok["invalidStaffIdList"] == ["ghost", "gone"] and ok["flowControlledStaffIdList"] == ["wangwu"]
    [sent] = emulator.records.robot_sends
    assert sent.delivered_to == ("zhangsan", "lisi") and sent.msg_param == {"content": "你好"}
    assert (
        sent.msg_key == "sampleText"
        and sent.robot_code == ROBOT
        and sent.process_query_key == ok["processQueryKey"]
    )
    assert emulator.usage.messages == 2


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"userIds": [f"u{i}" for i in range(21)]}, "InvalidParameter.userIds"),
        ({"userIds": []}, "MissinguserIds"),
        ({"userIds": "zhangsan"}, "InvalidParameter.userIds"),
        ({"robotCode": "someone-else"}, "InvalidParameter.robotCode"),
        ({"msgKey": "sampleHologram"}, "InvalidParameter.msgKey"),
        ({"msgParam": {"content": "not a string"}}, "InvalidParameter.msgParam"),
        ({"msgParam": "{not json"}, "InvalidParameter.msgParam"),
        ({"msgParam": json.dumps({"title": "no content"})}, "InvalidParameter.msgParam"),
    ],
)
async def test_robot_batch_send_refusals(
    call: Call, emulator: DingTalkEmulator, over: dict[str, Any], code: str
) -> None:
    token = await token_of(call)
    status, got = await call("POST", BATCH, batch(["zhangsan"], **over), token=token)
    assert (status, got["code"]) == (400, code)
    assert emulator.records.robot_sends == []


async def test_twenty_users_are_fine(call: Call, emulator: DingTalkEmulator) -> None:
    token = await token_of(call)
    status, _ = await call("POST", BATCH, batch(["zhangsan"] * 20), token=token)
    assert status == 200 and emulator.records.robot_sends[0].delivered_to == ("zhangsan",)


# ---------------------------------------------------------------- session webhooks


async def test_session_webhook_lives_90_minutes(
    http: TestClient[web.Request, web.Application], emulator: DingTalkEmulator, clock: FakeClock
) -> None:
    hook = emulator.issue_session_webhook("cid-single-zhangsan", user_id="zhangsan")
    url = path_of(hook.url)
    assert hook.url.startswith(emulator.base_url or "?") and "/robot/sendBySession?session=" in hook.url
    assert hook.expired_time_ms == int((clock.now().timestamp() + 5400) * 1000)
    body = {
        "msgtype": "text",
        "text": {"content": "已创建 loonflow_202601050001"},
        "at": {"atUserIds": ["zhangsan"]},
    }
    resp = await http.post(url, json=body)
    assert resp.status == 200 and await resp.json() == {"errcode": 0, "errmsg": "ok"}
    [post] = emulator.records.webhook_posts
    assert post.text == "已创建 loonflow_202601050001" and post.at_user_ids == ("zhangsan",)
    assert post.conversation_id == "cid-single-zhangsan" and post.msgtype == "text"
    for bad in (
        {"msgtype": "text", "text": {"content": ""}},
        {"msgtype": "hologram"},
        {"msgtype": "markdown"},
    ):
        resp = await http.post(url, json=bad)
        assert (await resp.json())["errcode"] == 40035
    resp = await http.post(url, data=b"not json")
    assert (await resp.json())["errcode"] == 40035
    clock.advance(minutes=89, seconds=59)
    assert (await (await http.post(url, json=body)).json())["errcode"] == 0
    clock.advance(seconds=1)
    expired = await (await http.post(url, json=body)).json()
    assert expired == {"errcode": 300001, "errmsg": "session 不存在"}
    unknown = await (await http.post("/robot/sendBySession?session=made-up", json=body)).json()
    assert unknown["errcode"] == 300001
    assert len(emulator.records.webhook_posts) == 2 and emulator.usage.messages == 2
    assert emulator.usage.api_calls == 0  # webhook posts are messages, not API calls


def path_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_session_webhooks_need_a_base_url(clock: FakeClock) -> None:
    emu = DingTalkEmulator(APP_KEY, APP_SECRET, ROBOT, clock)
    with pytest.raises(ValueError, match="base_url"):
        emu.issue_session_webhook("c")


async def test_robot_text_message_carries_the_documented_fields(
    http: TestClient[web.Request, web.Application], emulator: DingTalkEmulator, clock: FakeClock
) -> None:
    body = emulator.robot_text_message("待办", sender="zhangsan", msg_id="msgA")
    assert body["msgtype"] == "text" and body["text"] == {"content": "待办"} and body["msgId"] == "msgA"
    assert body["createAt"] == int(clock.now().timestamp() * 1000)
    assert body["conversationType"] == "1" and body["conversationId"] == "cid-single-zhangsan"
    assert body["senderStaffId"] == "zhangsan" and body["senderNick"] == "张三"
    assert body["senderCorpId"] == body["chatbotCorpId"] == CORP and body["robotCode"] == ROBOT
    assert body["chatbotUserId"] and body["isInAtList"] is True
    assert body["sessionWebhookExpiredTime"] == body["createAt"] + 90 * 60 * 1000
    resp = await http.post(
        path_of(body["sessionWebhook"]), json={"msgtype": "text", "text": {"content": "ok"}}
    )
    assert (await resp.json())["errcode"] == 0
    assert emulator.records.webhook_posts[0].conversation_id == "cid-single-zhangsan"
    group = emulator.robot_text_message(
        "@bot 待办",
        sender="lisi",
        group=True,
        conversation_id="cidGroup1",
        at_users=[{"dingtalkId": "$:bot", "staffId": ""}],
        conversation_title="IT 群",
    )
    assert group["conversationType"] == "2" and group["atUsers"] == [{"dingtalkId": "$:bot", "staffId": ""}]
    assert group["conversationTitle"] == "IT 群"
    plain = robot_text_message(
        content="x",
        msg_id="m",
        create_at=1,
        conversation_id="c",
        sender_staff_id="s",
        sender_nick="n",
        sender_corp_id="c1",
        chatbot_corp_id="c1",
        chatbot_user_id="b",
        robot_code="r",
        session_webhook="http://h/robot/sendBySession?session=t",
        session_webhook_expired_time=2,
    )
    assert "atUsers" not in plain and plain["conversationType"] == "1"


# ---------------------------------------------------------------- work notifications


OA = "/topapi/message/corpconversation/asyncsend_v2"
BAR = "/topapi/message/corpconversation/status_bar/update"


def oa_msg(title: str = "请假审批") -> dict[str, Any]:
    return {
        "msgtype": "oa",
        "oa": {
            "message_url": "http://127.0.0.1:8080/t/1",
            "head": {"bgcolor": "FFBBBBBB", "text": "ticketbot"},
            "body": {"title": title, "form": [{"key": "天数:", "value": "2"}]},
            "status_bar": {"status_value": "待审批", "status_bg": "0xFFF65E5E"},
        },
    }


async def test_work_notifications_and_status_bar(
    call: Call, emulator: DingTalkEmulator, clock: FakeClock
) -> None:
    token = await token_of(call)
    status, sent = await call(
        "POST", OA, {"agent_id": AGENT, "userid_list": "zhangsan,ghost,lisi", "msg": oa_msg()}, token=token
    )
    assert status == 200 and sent["errcode"] == 0 and isinstance(sent["task_id"], int) and sent["request_id"]
    [notice] = emulator.records.work_notices
    assert notice.delivered_to == ("zhangsan", "lisi") and notice.invalid == ("ghost",)
    assert notice.msg["oa"]["body"]["title"] == "请假审批" and notice.task_id == sent["task_id"]
    # msg as a JSON string, as form-style callers send it; the same content again is dropped for zhangsan
    status, again = await call(
        "POST",
        OA,
        {"agent_id": str(AGENT), "userid_list": "zhangsan", "msg": json.dumps(oa_msg())},
        token=token,
    )
    nobody: tuple[str, ...] = ()  # typed, so mypy does not narrow delivered_to to () for the later sends
    assert again["errcode"] == 0 and emulator.records.work_notices[-1].delivered_to == nobody
    [drop] = emulator.records.drops
    assert drop.userid == "zhangsan" and drop.task_id == again["task_id"]
    clock.advance(days=1)
    token = await token_of(call)
    await call("POST", OA, {"agent_id": AGENT, "userid_list": "zhangsan", "msg": oa_msg()}, token=token)
    assert emulator.records.work_notices[-1].delivered_to == ("zhangsan",)
    bar = {"agent_id": AGENT, "task_id": sent["task_id"], "status_value": "已同意", "status_bg": "0xFF78C06E"}
    status, ok = await call("POST", BAR, bar, token=token)
    assert ok["errcode"] == 0
    [update] = emulator.records.status_bar_updates
    assert (update.task_id, update.status_value, update.status_bg) == (
        sent["task_id"],
        "已同意",
        "0xFF78C06E",
    )
    assert (await call("POST", BAR, {**bar, "task_id": 1}, token=token))[1]["errcode"] == 40035
    assert (await call("POST", BAR, {**bar, "status_value": ""}, token=token))[1]["errcode"] == 40035
    assert emulator.usage.messages == 3
    status, listed = await call(
        "POST", OA, {"agent_id": AGENT, "userid_list": ["lisi"], "msg": oa_msg("x")}, token=token
    )
    assert listed["errcode"] == 0 and emulator.records.work_notices[-1].delivered_to == ("lisi",)


@pytest.mark.parametrize(
    "body",
    [
        {"userid_list": "zhangsan", "msg": oa_msg()},
        {"agent_id": 1, "userid_list": "zhangsan", "msg": oa_msg()},
        {"agent_id": AGENT, "userid_list": "", "msg": oa_msg()},
        {"agent_id": AGENT, "userid_list": ",".join(f"u{i}" for i in range(101)), "msg": oa_msg()},
        {"agent_id": AGENT, "userid_list": "zhangsan", "msg": {"msgtype": "hologram"}},
        {"agent_id": AGENT, "userid_list": "zhangsan", "msg": {"msgtype": "oa", "oa": {"head": {}}}},
        {"agent_id": AGENT, "userid_list": "zhangsan", "msg": "{oops"},
        {"agent_id": AGENT, "userid_list": 42, "msg": oa_msg()},
        {"agent_id": "x", "userid_list": "zhangsan", "msg": oa_msg()},
    ],
)
async def test_work_notification_refusals(
    call: Call, emulator: DingTalkEmulator, body: dict[str, Any]
) -> None:
    token = await token_of(call)
    status, got = await call("POST", OA, body, token=token)
    assert status == 200 and got["errcode"] == 40035 and emulator.records.work_notices == []


async def test_form_encoded_oapi_bodies(
    http: TestClient[web.Request, web.Application], call: Call, emulator: DingTalkEmulator
) -> None:
    token = await token_of(call)
    resp = await http.post(
        OA,
        params={"access_token": token},
        data={
            "agent_id": str(AGENT),
            "userid_list": "lisi",
            "msg": json.dumps({"msgtype": "text", "text": {"content": "hi"}}),
        },
    )
    assert (await resp.json())["errcode"] == 0 and emulator.records.work_notices[0].delivered_to == ("lisi",)


# ---------------------------------------------------------------- contacts


async def test_contacts(call: Call) -> None:
    token = await token_of(call)
    _, subs = await call("POST", "/topapi/v2/department/listsub", {"dept_id": 1}, token=token)
    assert subs["result"] == [
        {"dept_id": 2, "name": "IT", "parent_id": 1},
        {"dept_id": 4, "name": "HR", "parent_id": 1},
    ]
    _, none = await call("POST", "/topapi/v2/department/listsub", {"dept_id": 3}, token=token)
    assert none["result"] == []
    _, dept = await call("POST", "/topapi/v2/department/get", {"dept_id": 2}, token=token)
    assert dept["result"] == {"dept_id": 2, "name": "IT", "parent_id": 1}
    assert (await call("POST", "/topapi/v2/department/get", {"dept_id": 9}, token=token))[1][
        "errcode"
    ] == 60003
    assert (await call("POST", "/topapi/v2/department/get", {}, token=token))[1]["errcode"] == 40035
    _, page1 = await call("POST", "/topapi/v2/user/list", {"dept_id": 2, "cursor": 0, "size": 2}, token=token)
    assert [u["userid"] for u in page1["result"]["list"]] == ["lisi", "wangwu"]
    assert page1["result"]["has_more"] is True and page1["result"]["next_cursor"] == 2
    _, page2 = await call("POST", "/topapi/v2/user/list", {"dept_id": 2, "cursor": 2, "size": 2}, token=token)
    assert [(u["userid"], u["active"]) for u in page2["result"]["list"]] == [
        ("zhaoliu", True),
        ("gone", False),
    ]
    assert page2["result"]["has_more"] is False and "next_cursor" not in page2["result"]
    _, heads = await call("POST", "/topapi/v2/user/list", {"dept_id": 1, "size": 100}, token=token)
    [boss] = heads["result"]["list"]
    assert boss["leader"] is True and boss["mobile"] == "13800000001" and boss["email"] == "zs@example.cn"
    assert boss["dept_id_list"] == [1] and boss["leader_in_dept"] == [{"dept_id": 1, "leader": True}]
    for bad in ({"dept_id": 2, "size": 0}, {"dept_id": 2, "size": 101}, {"dept_id": 2, "size": "x"}):
        assert (await call("POST", "/topapi/v2/user/list", bad, token=token))[1]["errcode"] == 40035
    _, user = await call("POST", "/topapi/v2/user/get", {"userid": "lisi"}, token=token)
    assert user["result"]["name"] == "李四"
    assert (await call("POST", "/topapi/v2/user/get", {"userid": "x"}, token=token))[1]["errcode"] == 60121


# ---------------------------------------------------------------- chaos and quota


async def test_chaos_switches(call: Call, emulator: DingTalkEmulator, clock: FakeClock) -> None:
    token = await token_of(call)
    emulator.fail_next(2, 503, path=BATCH)
    assert (await call("POST", "/topapi/v2/department/get", {"dept_id": 1}, token=token))[1]["errcode"] == 0
    outcomes = [await call("POST", BATCH, batch(["lisi"]), token=token) for _ in range(3)]
    assert [s for s, _ in outcomes] == [503, 503, 200] and outcomes[0][1]["code"] == "ServiceUnavailable"
    emulator.fail_next(1, "Forbidden.AccessDenied.QpsLimitForApi")
    status, qps = await call("POST", BATCH, batch(["lisi"]), token=token)
    assert (status, qps["code"]) == (403, "Forbidden.AccessDenied.QpsLimitForApi")
    emulator.fail_next(1, 429)
    assert (await call("POST", BATCH, batch(["lisi"]), token=token))[0] == 429
    emulator.fail_next(1, "Throttling.User", path=BATCH)
    emulator.fail_next(1, "NotFound.Whatever", path=BATCH)
    assert [(await call("POST", BATCH, batch(["lisi"]), token=token))[0] for _ in range(2)] == [429, 404]
    emulator.fail_next(1, 90018, path="/topapi/v2/user/list")
    status, throttled = await call("POST", "/topapi/v2/user/list", {"dept_id": 1, "size": 1}, token=token)
    assert status == 200 and throttled["errcode"] == 90018
    emulator.fail_next(1, 502, path="/topapi/v2/user/list")
    status, text = await call("POST", "/topapi/v2/user/list", {"dept_id": 1, "size": 1}, token=token)
    assert status == 502 and isinstance(text, str)
    emulator.fail_next(1, "isv.some-sub-code", path="/gettoken")
    _, sub = await call("GET", "/gettoken", params={"appkey": APP_KEY, "appsecret": APP_SECRET})
    assert sub["errcode"] == 88 and sub["sub_code"] == "isv.some-sub-code"
    emulator.fail_next(1, 300001, path="/robot/sendBySession")
    hook = emulator.issue_session_webhook("c")
    _, gone = await call("POST", path_of(hook.url), {"msgtype": "text", "text": {"content": "x"}})
    assert gone["errcode"] == 300001
    assert [(f.status, f.code) for f in emulator.records.failures] == [
        (503, "ServiceUnavailable"),
        (503, "ServiceUnavailable"),
        (403, "Forbidden.AccessDenied.QpsLimitForApi"),
        (429, "Throttling"),
        (429, "Throttling.User"),
        (404, "NotFound.Whatever"),
        (200, "90018"),
        (502, "ServiceUnavailable"),
        (200, "isv.some-sub-code"),
        (200, "300001"),
    ]

    def outcomes_for(seed: int) -> list[int]:
        emu = DingTalkEmulator(APP_KEY, APP_SECRET, ROBOT, clock, seed=seed)
        emu.fail_ratio(0.5, 500)
        result = []
        for _ in range(40):
            try:
                emu._chaos_check(BATCH, "api")
                result.append(200)
            except Exception as exc:
                result.append(getattr(exc, "status", 0))
        return result

    assert outcomes_for(3) == outcomes_for(3) and 5 < outcomes_for(3).count(500) < 35
    emulator.fail_ratio(1.0, -1, path="/topapi/v2/department/get")
    assert (await call("POST", "/topapi/v2/department/get", {"dept_id": 1}, token=token))[1]["errcode"] == -1
    assert (await call("POST", BATCH, batch(["lisi"]), token=token))[0] == 200
    with pytest.raises(ValueError):
        emulator.fail_ratio(1.5)


async def test_monthly_quota(call: Call, emulator: DingTalkEmulator, clock: FakeClock) -> None:
    clock.current = datetime(2026, 1, 31, 15, 0, tzinfo=UTC)  # 23:00 in China
    emulator.api_call_limit = 3
    emulator.message_limit = 2
    token = await token_of(call)
    assert emulator.usage.api_calls == 0  # token requests are not metered
    assert (await call("POST", BATCH, batch(["zhangsan", "lisi"]), token=token))[0] == 200
    status, over = await call("POST", BATCH, batch(["wangwu"]), token=token)
    assert (status, over["code"]) == (403, "Forbidden.AccessDenied.ApiCountLimitForOrg")
    assert "额度:2次" in over["message"] and len(emulator.records.robot_sends) == 1
    assert (await call("POST", "/topapi/v2/department/get", {"dept_id": 1}, token=token))[1]["errcode"] == 0
    _, spent = await call("POST", "/topapi/v2/department/get", {"dept_id": 1}, token=token)
    assert spent["errcode"] == 90020 and "额度:3次" in spent["errmsg"]
    hook = emulator.issue_session_webhook("c")
    _, no_msgs = await call("POST", path_of(hook.url), {"msgtype": "text", "text": {"content": "x"}})
    assert no_msgs["errcode"] == 90020
    usage = emulator.usage
    assert (usage.month, usage.api_calls, usage.messages) == ("2026-01", 3, 2)
    clock.advance(hours=1)  # midnight in China: a new month
    assert emulator.usage.month == "2026-02" and emulator.usage.api_calls == 0
    assert (await call("POST", path_of(hook.url), {"msgtype": "text", "text": {"content": "x"}}))[1][
        "errcode"
    ] == 0
    assert set(emulator.records.usage) == {"2026-01", "2026-02"}


# ---------------------------------------------------------------- callbacks to the bot


class Bot:
    """A minimal bot: events decrypted with the product's crypto, robot and card signatures checked
    with formulas written here."""

    def __init__(self) -> None:
        self.crypto = DingTalkCrypto(TOKEN, AES, APP_KEY)
        self.events: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.robot: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.clicks: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.statuses: list[int] = []
        self.garble_reply = False
        self.missign_reply = False
        self.hang_first = False
        self.never = asyncio.Event()
        self.card_answer: dict[str, Any] | None = None

    async def event(self, request: web.Request) -> web.Response:
        if self.hang_first:
            self.hang_first = False
            await self.never.wait()
        pairs = (p.split("=", 1) for p in request.query_string.split("&") if "=" in p)
        q = {k: urllib.parse.unquote(v) for k, v in pairs}
        sig = q.get("signature") or q.get("msg_signature", "")
        ts = q.get("timestamp") or q.get("timeStamp", "")
        body = await request.json()
        try:
            plain = self.crypto.verify_and_decrypt(sig, ts, q["nonce"], body["encrypt"])
        except CallbackRefused as exc:
            return web.Response(status=exc.status, text=exc.reason)
        self.events.append((q, json.loads(plain)))
        status = self.statuses.pop(0) if self.statuses else 200
        if status != 200:
            return web.Response(status=status, text="later")
        encrypt = self.crypto.encrypt("success" if not self.garble_reply else "nope")
        reply_ts, nonce = "1700000000999", "rn"
        return web.json_response(
            {
                "msg_signature": product_signature(
                    "not" + TOKEN if self.missign_reply else TOKEN, reply_ts, nonce, encrypt
                ),
                "timeStamp": reply_ts,
                "nonce": nonce,
                "encrypt": encrypt,
            }
        )

    async def robot_message(self, request: web.Request) -> web.Response:
        ts = request.headers["timestamp"]
        mac = hmac.new(APP_SECRET.encode(), f"{ts}\n{APP_SECRET}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64decode(request.headers["sign"]), mac):
            return web.Response(status=403)
        self.robot.append((dict(request.headers), await request.json()))
        return web.json_response({"msgtype": "text", "text": {"content": "收到"}})

    async def card(self, request: web.Request) -> web.Response:
        ts = request.headers["x-ddpaas-signature-timestamp"]
        mac = hmac.new(b"card-secret", ts.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64decode(request.headers["x-ddpaas-signature"]), mac):
            return web.Response(status=403)
        self.clicks.append((dict(request.headers), await request.json()))
        return web.json_response(self.card_answer or {})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/dingtalk/events", self.event)
        app.router.add_post("/dingtalk/robot", self.robot_message)
        app.router.add_post("/dingtalk/card", self.card)
        return app


@pytest.fixture
async def bot(aiohttp_server: Any) -> AsyncIterator[tuple[Bot, TestServer, aiohttp.ClientSession]]:
    bot = Bot()
    server: TestServer = await aiohttp_server(bot.app())
    async with aiohttp.ClientSession() as session:
        yield bot, server, session


@pytest.mark.parametrize("spelling", ["signature", "msg_signature"])
async def test_send_event_and_the_encrypted_success(
    bot: tuple[Bot, TestServer, aiohttp.ClientSession], spelling: Any
) -> None:
    b, server, session = bot
    url = str(server.make_url("/dingtalk/events"))
    event = {"EventType": "bpms_task_change", "processInstanceId": "p+1/2=", "TimeStamp": 1700000000000}
    answer = await send_event(
        session,
        url,
        event,
        token=TOKEN,
        aes_key=AES,
        owner_key=APP_KEY,
        spelling=spelling,
        timestamp="1700000000000",
        nonce="n+1",
    )
    assert answer.ok and answer.status == 200 and answer.plaintext == "success"
    assert answer.reply is not None and set(answer.reply) == {
        "msg_signature",
        "timeStamp",
        "nonce",
        "encrypt",
    }
    [(query, got)] = b.events
    assert got == event and query["nonce"] == "n+1"
    assert query["timestamp" if spelling == "signature" else "timeStamp"] == "1700000000000"
    wrong = await send_event(session, url, event, token="wrong", aes_key=AES, owner_key=APP_KEY)
    assert wrong.status == 403 and not wrong.ok and wrong.plaintext is None and "JSON" in wrong.error
    other = await send_event(session, url, event, token=TOKEN, aes_key=AES, owner_key="another-app")
    assert other.status == 403
    b.garble_reply = True
    garbled = await send_event(session, url, '{"EventType":"x"}', token=TOKEN, aes_key=AES, owner_key=APP_KEY)
    assert garbled.status == 200 and garbled.plaintext == "nope" and not garbled.ok
    b.garble_reply, b.missign_reply = False, True
    unsigned = await send_event(session, url, event, token=TOKEN, aes_key=AES, owner_key=APP_KEY)
    assert unsigned.status == 200 and unsigned.reply is not None and not unsigned.ok
    assert unsigned.plaintext is None and "signature" in unsigned.error


async def test_verify_callback_url(bot: tuple[Bot, TestServer, aiohttp.ClientSession]) -> None:
    b, server, session = bot
    check = await verify_callback_url(
        session, str(server.make_url("/dingtalk/events")), token=TOKEN, aes_key=AES, owner_key=APP_KEY
    )
    assert check.ok and b.events[0][1] == {"EventType": "check_url"}


async def test_retrying_send_event_re_pushes_the_same_post(
    bot: tuple[Bot, TestServer, aiohttp.ClientSession],
) -> None:
    b, server, session = bot
    url = str(server.make_url("/dingtalk/events"))
    delays: list[float] = []

    async def sleep(d: float) -> None:
        delays.append(d)

    b.statuses = [500, 503]
    delivery = await retrying_send_event(
        session,
        url,
        {"EventType": "user_modify_org"},
        token=TOKEN,
        aes_key=AES,
        owner_key=APP_KEY,
        delay=1.0,
        sleep=sleep,
    )
    assert delivery.delivered and [a.status for a in delivery.attempts] == [500, 503, 200]
    assert delays == [1.0, 1.0]
    assert len({q["signature"] + q["nonce"] for q, _ in b.events}) == 1
    b.statuses = [500, 500, 500]
    failed = await retrying_send_event(
        session, url, {"EventType": "x"}, token=TOKEN, aes_key=AES, owner_key=APP_KEY, sleep=sleep
    )
    assert not failed.delivered and len(failed.attempts) == 3
    b.hang_first = True
    late = await retrying_send_event(
        session,
        url,
        {"EventType": "y"},
        token=TOKEN,
        aes_key=AES,
        owner_key=APP_KEY,
        deadline=0.05,
        sleep=sleep,
    )
    first, second = late.attempts
    assert first.status is None and "0.05" in first.error and second.plaintext == "success" and late.delivered
    b.never.set()
    gone = await retrying_send_event(
        session,
        "http://127.0.0.1:9/x",
        {"EventType": "z"},
        token=TOKEN,
        aes_key=AES,
        owner_key=APP_KEY,
        attempts=2,
        sleep=sleep,
    )
    assert [a.status for a in gone.attempts] == [None, None] and "Client" in gone.attempts[0].error


async def test_send_robot_message_signs_as_dingtalk(
    bot: tuple[Bot, TestServer, aiohttp.ClientSession], emulator: DingTalkEmulator
) -> None:
    b, server, session = bot
    emulator.base_url = "http://127.0.0.1:1"
    body = emulator.robot_text_message("发起 请假申请", sender="zhangsan")
    answer = await send_robot_message(
        session,
        str(server.make_url("/dingtalk/robot")),
        body,
        app_secret=APP_SECRET,
        timestamp_ms=1767603600000,
    )
    assert answer.status == 200 and answer.json == {"msgtype": "text", "text": {"content": "收到"}}
    [(headers, got)] = b.robot
    assert headers["timestamp"] == "1767603600000" and got == body
    forged = await send_robot_message(
        session, str(server.make_url("/dingtalk/robot")), body, app_secret="wrong"
    )
    assert forged.status == 403 and forged.json is None


async def test_card_clicks_signed_and_immediate_updates(
    bot: tuple[Bot, TestServer, aiohttp.ClientSession],
    call: Call,
    emulator: DingTalkEmulator,
    clock: FakeClock,
) -> None:
    b, server, session = bot
    token = await token_of(call)
    url = str(server.make_url("/dingtalk/card"))
    reg = {"callbackRouteKey": "ticketbot", "callbackUrl": url, "apiSecret": "card-secret"}
    assert (await call("POST", "/v1.0/card/callbacks/register", reg, token=token))[0] == 200
    await call("POST", CREATE, card_body(), token=token)
    b.card_answer = {
        "cardData": {"cardParamMap": {"status": "已同意 · 张三"}},
        "cardUpdateOptions": {"updateCardDataByKey": True},
    }
    answer = await emulator.click_card(
        session, "ticket_1_zhangsan", "zhangsan", action_id="approve", params={"action": "t:1:a:approve"}
    )
    assert answer.status == 200 and answer.json == b.card_answer
    [(headers, got)] = b.clicks
    assert headers["x-ddpaas-signature-timestamp"] == str(int(clock.now().timestamp() * 1000))
    assert got["type"] == "actionCallback" and got["outTrackId"] == "ticket_1_zhangsan"
    assert got["corpId"] == CORP and got["userId"] == "zhangsan"
    assert json.loads(got["content"]) == {
        "cardPrivateData": {"actionIds": ["approve"], "params": {"action": "t:1:a:approve"}}
    }
    [update] = emulator.records.card_updates
    assert update.source == "callback" and emulator.card_params("ticket_1_zhangsan")["title"] == "请假审批"
    assert emulator.card_params("ticket_1_zhangsan")["status"] == "已同意 · 张三"
    b.card_answer = {"cardData": {"cardParamMap": {"n": 1}}}  # unusable: ignored, the click still counts
    assert (await emulator.click_card(session, "ticket_1_zhangsan", "zhangsan")).status == 200
    assert len(emulator.records.card_updates) == 1
    forged = await send_card_callback(
        session, url, out_track_id="ticket_1_zhangsan", user_id="zhangsan", corp_id=CORP, api_secret="guess"
    )
    assert forged.status == 403 and forged.json is None
    raw = await send_card_callback(
        session,
        url,
        out_track_id="",
        user_id="",
        corp_id="",
        api_secret="card-secret",
        body={"type": "other"},
    )
    assert raw.status == 200 and b.clicks[-1][1] == {"type": "other"}
    assert json.loads(card_callback_body(out_track_id="o", user_id="u", corp_id="c")["content"]) == {
        "cardPrivateData": {"actionIds": [], "params": {}}
    }
    await call(
        "POST", CREATE, card_body("t_stream", callbackType="STREAM", callbackRouteKey=None), token=token
    )
    with pytest.raises(KeyError):
        await emulator.click_card(session, "t_stream", "zhangsan")


# ---------------------------------------------------------------- python -m emulator


async def test_the_command_line_serves_either_platform_or_both(aiohttp_client: Any) -> None:
    defaults = parser().parse_args([])
    assert defaults.platform == "wecom" and defaults.port == 8081 and defaults.corp_id == "ww-emulated-corp"
    old = parser().parse_args(["--port", "9000", "--corp-id", "ww1", "--agent-id", "7", "--secret", "s"])
    assert (old.port, old.corp_id, old.agent_id, old.secret) == (9000, "ww1", 7, "s")
    args = parser().parse_args(
        [
            "--platform",
            "both",
            "--app-key",
            "k",
            "--app-secret",
            "s2",
            "--corp-id",
            "ww1",
            "--agent-id",
            "7",
            "--secret",
            "s",
        ]
    )
    client: TestClient[web.Request, web.Application] = await aiohttp_client(build_app(args))
    wecom = await (await client.get("/cgi-bin/gettoken", params={"corpid": "ww1", "corpsecret": "s"})).json()
    assert wecom["errcode"] == 0 and wecom["access_token"]
    ding = await client.post("/v1.0/oauth2/accessToken", json={"appKey": "k", "appSecret": "s2"})
    assert ding.status == 200 and (await ding.json())["expireIn"] == 7200
    only_ding: TestClient[web.Request, web.Application] = await aiohttp_client(
        build_app(parser().parse_args(["--platform", "dingtalk"]))
    )
    assert (await only_ding.get("/cgi-bin/gettoken")).status == 404
    resp = await only_ding.get(
        "/gettoken", params={"appkey": "ding-emulated-app-key", "appsecret": "emulator-app-secret"}
    )
    assert (await resp.json())["errcode"] == 0
    only_wecom: TestClient[web.Request, web.Application] = await aiohttp_client(build_app(defaults))
    assert (await only_wecom.post("/v1.0/oauth2/accessToken", json={})).status == 404
