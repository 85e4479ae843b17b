"""The DingTalk API client against the DingTalk emulator on 127.0.0.1: two token caches with single
flight, one refresh on a rejected token, backoff on throttling / busy / 5xx, typed errors, card
deliverResults, chunked sends, paging, the calls counter, and no secrets in logs or errors."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.dingtalk.client import (
    BadCredentials,
    BatchSendResult,
    CardNotFound,
    DeliveryFailed,
    DingTalkClient,
    DingTalkError,
    NoPermission,
    QuotaExhausted,
    SessionWebhookExpired,
    Throttled,
    TokenRejected,
    Unavailable,
    group_space,
    robot_space,
)
from emulator.dingtalk import DingTalkEmulator
from tests.fakes import FakeClock

APP_KEY = "dingkey-1"
SECRET = "s3cret-DO-NOT-LOG-42"
ROBOT = "dingkey-1"
CORP = "dingcorp"
AGENT = 3000001
BATCH = "/v1.0/robot/oToMessages/batchSend"
CREATE = "/v1.0/card/instances/createAndDeliver"
MANY = [f"u{i:03d}" for i in range(250)]
ORG: dict[str, list[dict[str, Any]]] = {
    "departments": [
        {"dept_id": 1, "name": "总部"},
        {"dept_id": 2, "name": "IT", "parent_id": 1},
        {"dept_id": 3, "name": "运维", "parent_id": 2},
        {"dept_id": 4, "name": "HR", "parent_id": 1},
        {"dept_id": 5, "name": "外包", "parent_id": 3},
    ],
    "users": [
        {"userid": "zhangsan", "name": "张三", "dept_id_list": [1]},
        {"userid": "lisi", "name": "李四", "dept_id_list": [2]},
        *({"userid": u, "name": u, "dept_id_list": [3]} for u in MANY),
    ],
    "groups": [{"open_conversation_id": "cidIT", "name": "IT", "members": ["lisi"]}],
}
PARAMS = {"title": "请假审批", "fields": json.dumps([{"k": "天数", "v": "2"}], ensure_ascii=False)}


@dataclass
class Env:
    emulator: DingTalkEmulator
    server: TestServer
    session: aiohttp.ClientSession
    clock: FakeClock
    delays: list[float] = field(default_factory=list)

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def client(self, secret: str = SECRET, base: str | None = None, **kw: Any) -> DingTalkClient:
        return DingTalkClient(
            self.session,
            api_base=base or self.base,
            oapi_base=base or self.base,
            app_key=APP_KEY,
            app_secret=secret,
            robot_code=ROBOT,
            clock=self.clock,
            sleep=self.sleep,
            **kw,
        )

    def calls_to(self, path: str) -> int:
        return self.emulator.records.calls.count(path)


@pytest.fixture
async def env(aiohttp_server: Any) -> AsyncIterator[Env]:
    clock = FakeClock()
    emulator = DingTalkEmulator(APP_KEY, SECRET, ROBOT, clock, org=ORG, corp_id=CORP, agent_id=AGENT)
    server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
    assert server.host == "127.0.0.1"
    emulator.base_url = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as session:
        yield Env(emulator, server, session, clock)


def oa(title: str = "请假审批") -> dict[str, Any]:
    return {
        "message_url": "http://t/1",
        "head": {"bgcolor": "FFBBBBBB", "text": "ticketbot"},
        "body": {"title": title},
    }


# ---------------------------------------------------------------- tokens


async def test_tokens_are_cached_per_api_until_they_near_expiry(env: Env) -> None:
    client = env.client()
    await client.robot_batch_send(["zhangsan"], "sampleText", {"content": "one"})
    env.clock.advance(seconds=3600)
    await client.robot_batch_send(["zhangsan"], "sampleText", {"content": "two"})
    assert (await client.get_department(2))["name"] == "IT"
    await client.get_department(1)
    styles = [r.style for r in env.emulator.records.token_requests]
    assert styles == ["v1.0", "oapi"]  # one each: the new and the old API keep their own token
    env.clock.advance(seconds=3600)  # 7200 s in all: past the refresh margin
    await client.robot_batch_send(["zhangsan"], "sampleText", {"content": "three"})
    assert env.emulator.records.token_calls == 3
    assert not env.emulator.records.failures  # refreshed ahead of expiry, never refused


async def test_concurrent_callers_share_one_token_request(env: Env) -> None:
    client = env.client()
    results = await asyncio.gather(
        *(client.robot_batch_send(["lisi"], "sampleText", {"content": f"#{i}"}) for i in range(20)),
        *(client.get_department(1) for _ in range(10)),
    )
    assert env.emulator.records.token_calls == 2  # one per API generation
    assert len({r.process_query_keys for r in results if isinstance(r, BatchSendResult)}) == 20


@pytest.mark.parametrize("switch", ["expire_all_tokens", "revoke_all_tokens"])
@pytest.mark.parametrize("token_status", [400, 401])
async def test_a_rejected_token_is_refreshed_once_and_the_call_retried(
    env: Env, switch: str, token_status: int
) -> None:
    env.emulator.token_error_status = token_status
    client = env.client()
    await client.robot_batch_send(["lisi"], "sampleText", {"content": "warm"})
    await client.get_department(1)
    getattr(env.emulator, switch)()
    assert (await client.robot_batch_send(["lisi"], "sampleText", {"content": "after"})).process_query_keys
    assert (await client.get_department(2))["dept_id"] == 2
    assert env.emulator.records.token_calls == 4
    expected_oapi = "42001" if switch == "expire_all_tokens" else "40014"
    assert [(f.status, f.code) for f in env.emulator.records.failures] == [
        (token_status, "InvalidAuthentication"),
        (200, expected_oapi),
    ]
    assert env.delays == []  # a token refresh is not a backoff


async def test_concurrent_rejections_refresh_only_once(env: Env) -> None:
    client = env.client()
    await client.get_department(1)
    env.emulator.expire_all_tokens()
    await asyncio.gather(*(client.get_department(2) for _ in range(10)))
    assert env.emulator.records.token_calls == 2


async def test_a_token_rejected_twice_raises_token_rejected(env: Env) -> None:
    client = env.client()
    env.emulator.fail_next(2, "InvalidAuthentication", path=BATCH)
    with pytest.raises(TokenRejected) as exc:
        await client.robot_batch_send(["lisi"], "sampleText", {"content": "x"})
    assert (
        exc.value.code == "InvalidAuthentication"
        and exc.value.status == 400
        and "AppSecret" in str(exc.value)
    )
    assert env.emulator.records.token_calls == 2 and env.calls_to(BATCH) == 2 and env.delays == []


@pytest.mark.parametrize("path", ["/v1.0/oauth2/accessToken", "/gettoken"])
async def test_bad_credentials(env: Env, path: str) -> None:
    client = env.client(secret="wrong")
    call = (
        client.get_department(1)
        if path == "/gettoken"
        else client.robot_batch_send(["lisi"], "sampleText", {"content": "x"})
    )
    with pytest.raises(BadCredentials) as exc:
        await call
    assert exc.value.code in {"invalidClientIdOrSecret", "40089"} and "developer console" in str(exc.value)
    assert env.calls_to(path) == 1 and env.delays == []  # not retried


# ---------------------------------------------------------------- retries


async def test_throttling_backs_off_and_succeeds(env: Env) -> None:
    client = env.client()
    await client.get_department(1)
    env.emulator.fail_next(1, 429, path=BATCH)
    assert (await client.robot_batch_send(["lisi"], "sampleText", {"content": "x"})).process_query_keys
    assert env.delays == [0.5]
    env.emulator.fail_next(2, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", path=BATCH)
    assert (await client.robot_batch_send(["lisi"], "sampleText", {"content": "y"})).process_query_keys
    assert env.delays == [0.5, 0.5, 1.0]
    env.emulator.fail_next(1, 90018, path="/topapi/v2/department/get")
    assert (await client.get_department(2))["name"] == "IT"
    assert env.delays == [0.5, 0.5, 1.0, 0.5]


async def test_throttling_gives_up_after_three_attempts(env: Env) -> None:
    client = env.client()
    env.emulator.fail_next(3, 90002, path="/topapi/v2/department/listsub")
    with pytest.raises(Throttled) as exc:
        await client.list_departments()
    assert exc.value.code == "90002" and "rate-limiting" in str(exc.value)
    assert env.delays == [0.5, 1.0] and env.calls_to("/topapi/v2/department/listsub") == 3


async def test_unavailable_answers(env: Env) -> None:
    client = env.client()
    await client.robot_batch_send(["lisi"], "sampleText", {"content": "warm"})
    env.emulator.fail_next(2, 503, path=BATCH)  # not processed: even a send is retried
    assert (await client.robot_batch_send(["lisi"], "sampleText", {"content": "x"})).process_query_keys
    assert env.delays == [0.5, 1.0]
    env.emulator.fail_next(1, 500, path=BATCH)  # may have happened: a send is not repeated
    with pytest.raises(Unavailable) as exc:
        await client.robot_batch_send(["lisi"], "sampleText", {"content": "y"})
    assert exc.value.maybe_delivered and exc.value.status == 500 and env.delays == [0.5, 1.0]
    assert len(env.emulator.records.robot_sends) == 2
    delivery = await client.create_and_deliver_card("t1", "tpl", PARAMS, open_space_id=robot_space("lisi"))
    env.emulator.fail_next(1, 500, path="/v1.0/card/instances")  # an update is idempotent: retried
    await client.update_card(delivery.out_track_id, {"status": "已同意"})
    assert env.delays == [0.5, 1.0, 0.5]
    env.emulator.fail_next(3, -1, path="/topapi/v2/department/get")
    with pytest.raises(Unavailable) as busy:
        await client.get_department(1)
    assert "busy" in str(busy.value) and env.delays == [0.5, 1.0, 0.5, 0.5, 1.0]
    env.emulator.fail_next(3, 504, path="/topapi/v2/department/get")
    with pytest.raises(Unavailable) as gateway:
        await client.get_department(1)
    assert gateway.value.status == 504 and not gateway.value.maybe_delivered


async def test_unreachable_dingtalk(env: Env) -> None:
    client = env.client(base="http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(Unavailable) as exc:
        await client.robot_batch_send(["lisi"], "sampleText", {"content": "x"})
    assert "cannot connect" in str(exc.value) and not exc.value.maybe_delivered
    assert env.delays == [0.5, 1.0]  # the token request is idempotent: retried
    assert "127.0.0.1:9" not in str(exc.value) and SECRET not in str(exc.value)
    assert client.calls == 3


async def test_timeouts_and_nonsense(aiohttp_server: Any) -> None:
    gate = asyncio.Event()

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"accessToken": "tok", "expireIn": 7200})

    async def hang(request: web.Request) -> web.Response:
        await gate.wait()
        return web.json_response({})

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>gateway</html>", content_type="text/html")

    async def gettoken(request: web.Request) -> web.Response:
        return web.json_response({"errcode": 0, "access_token": "old", "expires_in": 7200})

    async def stuck_pages(request: web.Request) -> web.Response:
        return web.json_response({"errcode": 0, "result": {"has_more": True, "list": []}})

    app = web.Application()
    app.router.add_post("/v1.0/oauth2/accessToken", token)
    app.router.add_get("/gettoken", gettoken)
    app.router.add_post("/topapi/v2/user/list", stuck_pages)
    app.router.add_post(BATCH, hang)
    app.router.add_put("/v1.0/card/instances", html)
    server: TestServer = await aiohttp_server(app)
    delays: list[float] = []

    async def sleep(d: float) -> None:
        delays.append(d)

    async with aiohttp.ClientSession() as session:
        client = DingTalkClient(
            session,
            api_base=str(server.make_url("")),
            oapi_base=str(server.make_url("")),
            app_key=APP_KEY,
            app_secret=SECRET,
            robot_code=ROBOT,
            clock=FakeClock(),
            sleep=sleep,
            timeout=0.05,
        )
        with pytest.raises(Unavailable) as late:
            await client.robot_batch_send(["lisi"], "sampleText", {"content": "x"})
        assert late.value.maybe_delivered and "in time" in str(late.value) and delays == []
        with pytest.raises(Unavailable) as nonsense:
            await client.update_card("t", {"a": "b"})
        assert "JSON" in str(nonsense.value)
        with pytest.raises(Unavailable, match="next_cursor"):
            await client.list_users(1)
        gate.set()


# ---------------------------------------------------------------- typed errors


async def test_quota_exhausted_on_both_apis(env: Env) -> None:
    client = env.client()
    env.emulator.api_call_limit = 1
    await client.robot_batch_send(["lisi"], "sampleText", {"content": "x"})
    with pytest.raises(QuotaExhausted) as new_api:
        await client.robot_batch_send(["lisi"], "sampleText", {"content": "y"})
    assert new_api.value.code == "Forbidden.AccessDenied.ApiCountLimitForOrg" and new_api.value.status == 403
    with pytest.raises(QuotaExhausted) as old_api:
        await client.get_department(1)
    assert old_api.value.code == "90020" and "monthly" in str(old_api.value)
    assert env.delays == [] and env.emulator.usage.api_calls == 1


async def test_no_permission_on_both_apis(env: Env) -> None:
    env.emulator.forbidden_paths |= {CREATE, "/topapi/v2/user/list"}
    client = env.client()
    with pytest.raises(NoPermission) as new_api:
        await client.create_and_deliver_card("t1", "tpl", PARAMS, open_space_id=robot_space("lisi"))
    assert new_api.value.code == "Forbidden.AccessDenied.AccessTokenPermissionDenied"
    with pytest.raises(NoPermission) as old_api:
        await client.list_users(2)
    assert old_api.value.code == "60011" and "权限管理" in old_api.value.hint and old_api.value.request_id
    assert env.delays == []


async def test_other_refusals_keep_dingtalks_code(env: Env) -> None:
    client = env.client()
    with pytest.raises(DingTalkError) as exc:
        await client.robot_batch_send(["lisi"], "sampleHologram", {"content": "x"})
    assert type(exc.value) is DingTalkError and exc.value.code == "InvalidParameter.msgKey"
    assert exc.value.status == 400 and exc.value.request_id
    with pytest.raises(DingTalkError) as dept:
        await client.get_department(99)
    assert dept.value.code == "60003" and dept.value.status is None


# ---------------------------------------------------------------- cards


async def test_create_and_deliver_card(env: Env) -> None:
    client = env.client()
    await client.register_card_callback("ticketbot", "https://bot.example/dingtalk/card", "api-sec")
    [reg] = env.emulator.records.callback_registrations
    assert (reg.route_key, reg.url, reg.api_secret, reg.force_update) == (
        "ticketbot",
        "https://bot.example/dingtalk/card",
        "api-sec",
        True,
    )
    delivery = await client.create_and_deliver_card(
        "ticket_1_lisi",
        "tpl.schema",
        PARAMS,
        {"lisi": {"mine": "yes"}},
        open_space_id=robot_space("lisi"),
        callback_route_key="ticketbot",
    )
    assert delivery.out_track_id == "ticket_1_lisi"
    assert [(r.space_type, r.space_id, r.success) for r in delivery.results] == [("IM_ROBOT", "lisi", True)]
    [card] = env.emulator.records.cards
    assert (
        card.param_map == PARAMS and card.callback_type == "HTTP" and card.callback_route_key == "ticketbot"
    )
    assert card.private_data == {"lisi": {"cardParamMap": {"mine": "yes"}}}
    assert card.body["imRobotOpenDeliverModel"] == {"spaceType": "IM_ROBOT", "robotCode": ROBOT}
    assert card.body["userIdType"] == 1 and "imGroupOpenDeliverModel" not in card.body
    group = await client.create_and_deliver_card(
        "ticket_1_group", "tpl.schema", PARAMS, open_space_id=group_space("cidIT")
    )
    assert group.results[0].space_type == "IM_GROUP"
    assert env.emulator.records.cards[-1].callback_type == "STREAM"
    assert env.emulator.records.cards[-1].body["imGroupOpenDeliverModel"] == {"robotCode": ROBOT}


async def test_a_failed_delivery_raises_even_though_dingtalk_says_success(env: Env) -> None:
    client = env.client()
    with pytest.raises(DeliveryFailed) as exc:
        await client.create_and_deliver_card("t_ghost", "tpl", PARAMS, open_space_id=robot_space("ghost"))
    assert exc.value.out_track_id == "t_ghost" and exc.value.delivered == ()
    [result] = exc.value.results
    assert not result.success and "ghost" in result.error_msg and "ghost" in str(exc.value)
    both = f"{robot_space('lisi')};IM_ROBOT.ghost"
    with pytest.raises(DeliveryFailed) as partial:
        await client.create_and_deliver_card("t_partial", "tpl", PARAMS, open_space_id=both)
    assert [r.space_id for r in partial.value.delivered] == ["lisi"]
    assert isinstance(partial.value, DingTalkError)


async def test_card_params_must_be_strings_and_spaces_well_formed(env: Env) -> None:
    client = env.client()
    with pytest.raises(TypeError, match="days"):
        await client.create_and_deliver_card("t", "tpl", {"days": 2}, open_space_id=robot_space("lisi"))  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="privateData"):
        await client.update_card("t", {}, {"lisi": {"n": 1}})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"dtv1\.card"):
        await client.create_and_deliver_card("t", "tpl", PARAMS, open_space_id="IM_ROBOT.lisi")
    assert client.calls == 0  # refused before asking DingTalk


async def test_update_card(env: Env) -> None:
    client = env.client()
    await client.create_and_deliver_card("t1", "tpl", PARAMS, open_space_id=robot_space("lisi"))
    await client.update_card("t1", {"status": "已同意 · 李四"}, {"lisi": {"done": "1"}})
    assert env.emulator.card_params("t1") == {**PARAMS, "status": "已同意 · 李四"}
    assert env.emulator.card_private_data("t1") == {"lisi": {"cardParamMap": {"done": "1"}}}
    await client.update_card("t1", {"status": "closed"}, by_key=False)
    assert env.emulator.card_params("t1") == {"status": "closed"}
    with pytest.raises(CardNotFound) as exc:
        await client.update_card("never-sent", {"status": "x"})
    assert exc.value.status == 404 and "fresh one" in str(exc.value)
    assert env.delays == []


# ---------------------------------------------------------------- robot messages and webhooks


async def test_batch_send_chunks_of_twenty(env: Env) -> None:
    client = env.client()
    env.emulator.flow_controlled.add("u001")
    users = ["ghost", *MANY[:44], "lisi", "lisi"]  # 46 distinct
    result = await client.robot_batch_send(users, "sampleMarkdown", {"title": "待办", "text": "**3** 件"})
    sends = env.emulator.records.robot_sends
    assert [len(s.user_ids) for s in sends] == [20, 20, 6] and len(result.process_query_keys) == 3
    assert result.invalid_user_ids == ("ghost",) and result.flow_controlled_user_ids == ("u001",)
    assert (
        sends[0].msg_param == {"title": "待办", "text": "**3** 件"} and sends[0].msg_key == "sampleMarkdown"
    )
    assert sum(len(s.delivered_to) for s in sends) == 44
    assert await client.robot_batch_send([], "sampleText", {"content": "x"}) == BatchSendResult(())
    assert env.calls_to(BATCH) == 3 and env.emulator.records.token_calls == 1


async def test_session_webhook(env: Env) -> None:
    client = env.client()
    hook = env.emulator.issue_session_webhook("cid-single-lisi", user_id="lisi")
    await client.send_session_webhook(hook.url, "已创建 #12", at_user_ids=["lisi"])
    [post] = env.emulator.records.webhook_posts
    assert post.text == "已创建 #12" and post.at_user_ids == ("lisi",)
    assert env.emulator.records.token_calls == 0  # no token for webhooks
    env.clock.advance(minutes=91)
    with pytest.raises(SessionWebhookExpired) as exc:
        await client.send_session_webhook(hook.url, "too late")
    assert exc.value.code == "300001" and "robot API" in str(exc.value)
    session_token = hook.url.split("session=")[1]
    assert session_token not in str(exc.value)
    with pytest.raises(DingTalkError, match="oapi host"):
        await client.send_session_webhook("https://evil.example/robot/sendBySession?session=x", "hi")
    # not a URL at all (it comes from an inbound message): refused the same way, not a ValueError
    # that would fail the message's processing (found by the callback fuzz)
    for junk in ("http://[::1", "http://[oapi/robot", ""):
        with pytest.raises(DingTalkError, match="oapi host"):
            await client.send_session_webhook(junk, "hi")
    assert client.calls_by_path == {"/robot/sendBySession": 2}


# ---------------------------------------------------------------- work notifications


async def test_oa_notifications_in_chunks_of_100_and_status_bar(env: Env) -> None:
    client = env.client()
    tasks = await client.send_oa(AGENT, [*MANY[:150], "zhangsan"], oa())
    notices = env.emulator.records.work_notices
    assert [len(n.user_ids) for n in notices] == [100, 51] and tasks == tuple(n.task_id for n in notices)
    assert notices[0].msg == {"msgtype": "oa", "oa": oa()}
    await client.update_oa_status_bar(AGENT, tasks[0], "已同意", "0xFF78C06E")
    [bar] = env.emulator.records.status_bar_updates
    assert (bar.task_id, bar.status_value, bar.status_bg) == (tasks[0], "已同意", "0xFF78C06E")
    with pytest.raises(DingTalkError) as exc:
        await client.send_oa(AGENT + 1, ["zhangsan"], oa())
    assert exc.value.code == "40035"
    assert env.emulator.records.token_requests[0].style == "oapi" and env.emulator.records.token_calls == 1


# ---------------------------------------------------------------- contacts


async def test_contacts_recursion_and_paging(env: Env) -> None:
    client = env.client()
    depts = await client.list_departments()
    assert [d["dept_id"] for d in depts] == [2, 4, 3, 5]
    assert env.calls_to("/topapi/v2/department/listsub") == 5  # one per department
    assert [d["dept_id"] for d in await client.list_departments(2)] == [3, 5]
    assert (await client.get_department(3))["parent_id"] == 2
    users = await client.list_users(3)
    assert [u["userid"] for u in users] == MANY and env.calls_to("/topapi/v2/user/list") == 3
    assert [u["userid"] for u in await client.list_users(2)] == ["lisi"]
    assert client.calls == len(env.emulator.records.calls)
    assert env.emulator.usage.api_calls == client.calls - env.emulator.records.token_calls


# ---------------------------------------------------------------- secrets


async def test_neither_the_secret_nor_the_tokens_reach_logs_or_errors(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = env.client()
    await client.robot_batch_send(["lisi"], "sampleText", {"content": "x"})
    await client.get_department(1)
    env.emulator.expire_all_tokens()
    env.emulator.fail_next(1, 429, path=BATCH)
    await client.robot_batch_send(["lisi"], "sampleText", {"content": "y"})
    await client.get_department(1)
    tokens = env.emulator.issued_tokens()
    assert len(tokens) == 2
    errors: list[str] = []
    env.emulator.fail_next(1, "Weird", path=BATCH, message=f"token {tokens[-1]} secret {SECRET} no good")
    with pytest.raises(DingTalkError) as weird:
        await client.robot_batch_send(["lisi"], "sampleText", {"content": "z"})
    errors.append(str(weird.value))
    assert "***" in weird.value.message
    env.emulator.forbidden_paths.add("/topapi/v2/department/get")
    with pytest.raises(NoPermission) as denied:
        await client.get_department(1)
    errors.append(str(denied.value))
    env.emulator.forbidden_paths.clear()
    with pytest.raises(BadCredentials) as bad:
        await env.client(secret="also-secret-value").get_department(1)
    errors.append(str(bad.value))
    refreshes = [r for r in caplog.records if r.getMessage() == "dingtalk access token refreshed"]
    assert len(refreshes) == 4 and all(r.__dict__["expires_in"] == 7200 for r in refreshes)
    assert any("retried" in r.getMessage() for r in caplog.records)
    everything = (
        caplog.text + "".join(str(r.__dict__) for r in caplog.records) + "".join(errors) + repr(client)
    )
    for secret in [SECRET, "also-secret-value", *tokens]:
        assert secret not in everything
