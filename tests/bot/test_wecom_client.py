"""The WeCom API client against the emulator on 127.0.0.1: token cache and single flight, refresh on
40014/42001, backoff on busy codes, typed errors, the per-recipient limiter, and no secrets in logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.wecom.client import (
    AllRecipientsInvalid,
    BadSecret,
    IPNotTrusted,
    NoPermission,
    RateLimited,
    ResponseCodeInvalid,
    SendResult,
    WeComBusy,
    WeComClient,
    WeComError,
    WeComUnavailable,
)
from emulator.wecom import WeComEmulator
from tests.fakes import FakeClock

CORP = "ww-corp-1"
AGENT = 1000002
SECRET = "s3cret-DO-NOT-LOG-42"
ORG: dict[str, list[dict[str, Any]]] = {
    "departments": [{"id": 1, "name": "总部", "parentid": 0}, {"id": 2, "name": "IT", "parentid": 1}],
    "users": [
        {"userid": "zhangsan", "name": "张三", "department": [1]},
        {"userid": "lisi", "name": "李四", "department": [2]},
    ],
}
CARD: dict[str, Any] = {
    "card_type": "button_interaction",
    "main_title": {"title": "请假审批"},
    "task_id": "ticket_1",
    "button_list": [
        {"text": "同意", "style": 1, "key": "approve"},
        {"text": "驳回", "style": 2, "key": "reject"},
    ],
}


@dataclass
class Env:
    emulator: WeComEmulator
    server: TestServer
    session: aiohttp.ClientSession
    clock: FakeClock
    delays: list[float] = field(default_factory=list)

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)

    def client(self, secret: str = SECRET, **kw: Any) -> WeComClient:
        return WeComClient(
            self.session,
            api_base=str(self.server.make_url("")),
            corp_id=CORP,
            corp_secret=secret,
            agent_id=AGENT,
            clock=self.clock,
            sleep=self.sleep,
            **kw,
        )


@pytest.fixture
async def env(aiohttp_server: Any) -> AsyncIterator[Env]:
    clock = FakeClock()
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, org=ORG)
    server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
    assert server.host == "127.0.0.1"
    async with aiohttp.ClientSession() as session:
        yield Env(emulator, server, session, clock)


async def test_token_is_cached_across_calls_until_it_nears_expiry(env: Env) -> None:
    client = env.client()
    await client.send_text("zhangsan", "one")
    env.clock.advance(seconds=3600)
    await client.send_text("zhangsan", "two")
    assert await client.get_user("lisi") == {"userid": "lisi", "name": "李四", "department": [2]}
    assert env.emulator.records.gettoken_calls == 1
    env.clock.advance(seconds=3600)  # 7200 s in all: past the refresh margin
    await client.send_text("zhangsan", "three")
    assert env.emulator.records.gettoken_calls == 2
    assert not env.emulator.records.failures  # refreshed ahead of expiry, never answered 42001


async def test_concurrent_callers_share_one_gettoken(env: Env) -> None:
    client = env.client()
    results = await asyncio.gather(*(client.send_text("zhangsan", f"#{i}") for i in range(20)))
    assert env.emulator.records.gettoken_calls == 1
    assert len({r.msgid for r in results}) == 20 and len(env.emulator.records.messages) == 20


@pytest.mark.parametrize(("switch", "errcode"), [("expire_all_tokens", 42001), ("revoke_all_tokens", 40014)])
async def test_a_rejected_token_is_refreshed_once_and_the_call_retried(
    env: Env, switch: str, errcode: int
) -> None:
    client = env.client()
    await client.send_text("zhangsan", "warm")
    getattr(env.emulator, switch)()
    result = await client.send_text("zhangsan", "after")
    assert result.msgid and env.emulator.records.gettoken_calls == 2
    assert [f.errcode for f in env.emulator.records.failures] == [errcode]
    assert env.delays == []  # a token refresh is not a backoff


async def test_concurrent_rejections_refresh_only_once(env: Env) -> None:
    client = env.client()
    await client.send_text("zhangsan", "warm")
    env.emulator.expire_all_tokens()
    await asyncio.gather(*(client.list_departments() for _ in range(10)))
    assert env.emulator.records.gettoken_calls == 2


async def test_busy_codes_back_off_and_succeed(env: Env) -> None:
    client = env.client()
    await client.send_text("zhangsan", "warm")
    env.emulator.fail_next(1, 45009, path="/cgi-bin/message/send")
    assert (await client.send_text("zhangsan", "x")).msgid
    assert env.delays == [0.5]
    env.emulator.fail_next(2, 45033, path="/cgi-bin/message/send")
    assert (await client.send_text("zhangsan", "y")).msgid
    assert env.delays == [0.5, 0.5, 1.0]


async def test_busy_codes_give_up_after_three_attempts(env: Env) -> None:
    client = env.client()
    env.emulator.fail_next(3, -1, path="/cgi-bin/user/get")
    with pytest.raises(WeComBusy) as busy:
        await client.get_user("lisi")
    assert busy.value.errcode == -1 and env.delays == [0.5, 1.0]
    assert len([c for c in env.emulator.records.calls if c == "/cgi-bin/user/get"]) == 3


async def test_a_refused_send_gives_its_quota_back(env: Env) -> None:
    client = env.client(per_minute=2)
    env.emulator.fail_next(3, -1, path="/cgi-bin/message/send")
    with pytest.raises(WeComBusy):
        await client.send_text("zhangsan", "lost")
    await client.send_text("zhangsan", "1")
    await client.send_text("zhangsan", "2")
    with pytest.raises(RateLimited):
        await client.send_text("zhangsan", "3")


async def test_ip_not_trusted(env: Env) -> None:
    env.emulator.trusted_ips = {"10.0.0.9"}
    with pytest.raises(IPNotTrusted) as exc:
        await env.client().send_text("zhangsan", "x")
    assert exc.value.errcode == 60020
    assert "add 127.0.0.1 to the app's trusted IPs" in str(exc.value)


async def test_all_recipients_invalid_and_partial_invalid(env: Env) -> None:
    client = env.client()
    with pytest.raises(AllRecipientsInvalid) as exc:
        await client.send_text(["ghost", "nobody"], "x")
    assert exc.value.errcode == 81013 and "visible range" in str(exc.value)
    partial = await client.send_text("zhangsan|ghost", "x")
    assert partial.invalid_users == ("ghost",)


async def test_no_permission(env: Env) -> None:
    env.emulator.forbidden_paths.add("/cgi-bin/user/list")
    with pytest.raises(NoPermission) as exc:
        await env.client().list_users(1)
    assert exc.value.errcode == 48002 and "permission" in exc.value.hint


async def test_bad_secret(env: Env) -> None:
    with pytest.raises(BadSecret) as exc:
        await env.client(secret="wrong").send_text("zhangsan", "x")
    assert exc.value.errcode == 40001 and "Secret" in str(exc.value)
    assert isinstance(exc.value, WeComError)


async def test_cards_response_codes_and_updates(env: Env) -> None:
    client = env.client()
    sent = await client.send_template_card("zhangsan", CARD)
    assert isinstance(sent, SendResult) and sent.msgid and sent.response_code
    notice = await client.send_template_card(
        "lisi",
        {
            "card_type": "text_notice",
            "card_action": {"type": 1, "url": "https://e.invalid"},
            "main_title": {"title": "t"},
        },
    )
    assert notice.response_code is None
    assert (
        await client.update_template_card(
            ["zhangsan"], sent.response_code, {"button": {"replace_name": "已同意"}}
        )
        == []
    )
    [update] = env.emulator.records.updates
    assert update.msgid == sent.msgid and update.body["agentid"] == AGENT
    with pytest.raises(ResponseCodeInvalid) as exc:
        await client.update_template_card(
            ["zhangsan"], sent.response_code, {"button": {"replace_name": "again"}}
        )
    assert exc.value.errcode == 60140 and "fresh card" in str(exc.value)
    expiring = await client.send_template_card("zhangsan", {**CARD, "task_id": "ticket_2"})
    env.clock.advance(hours=24)
    with pytest.raises(ResponseCodeInvalid):
        await client.update_template_card([], expiring.response_code or "", {"button": {"replace_name": "x"}})


async def test_directory_calls(env: Env) -> None:
    client = env.client()
    assert [u["userid"] for u in await client.list_users(1, fetch_child=True)] == ["zhangsan", "lisi"]
    assert [u["userid"] for u in await client.list_users(2)] == ["lisi"]
    assert [d["name"] for d in await client.list_departments()] == ["总部", "IT"]
    assert [d["id"] for d in await client.list_departments(2)] == [2]
    with pytest.raises(WeComError) as exc:
        await client.get_user("ghost")
    assert exc.value.errcode == 60111


async def test_the_limiter_refuses_the_31st_message_a_minute_instead_of_letting_wecom_drop_it(
    env: Env,
) -> None:
    client = env.client()
    for i in range(30):
        await client.send_text("zhangsan", f"#{i}")
    env.clock.advance(seconds=20)
    with pytest.raises(RateLimited) as exc:
        await client.send_text("zhangsan", "#30")
    assert exc.value.retry_after_seconds == pytest.approx(40) and exc.value.userids == ("zhangsan",)
    with pytest.raises(RateLimited):  # a multi-recipient send is refused whole: nobody gets a partial copy
        await client.send_text(["lisi", "zhangsan"], "both")
    assert (await client.send_text("lisi", "others are fine")).msgid
    assert len(env.emulator.records.messages) == 31 and env.emulator.records.drops == []
    env.clock.advance(seconds=40)
    assert (await client.send_text("zhangsan", "#30")).msgid
    assert env.emulator.records.drops == []


async def test_unreachable_wecom(env: Env) -> None:
    client = WeComClient(
        env.session,
        api_base="http://127.0.0.1:9",  # discard port: nothing listens
        corp_id=CORP,
        corp_secret=SECRET,
        agent_id=AGENT,
        clock=env.clock,
        sleep=env.sleep,
    )
    with pytest.raises(WeComUnavailable) as exc:
        await client.send_text("zhangsan", "x")
    assert "cannot connect" in str(exc.value) and env.delays == [0.5, 1.0]  # gettoken is a GET: retried
    assert "127.0.0.1:9" not in str(exc.value) and SECRET not in str(exc.value)


async def test_neither_the_secret_nor_the_token_reaches_the_log(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = env.client()
    await client.send_text("zhangsan", "x")
    env.emulator.expire_all_tokens()
    env.emulator.fail_next(1, 45009, path="/cgi-bin/message/send")
    await client.send_template_card("zhangsan", CARD)
    env.clock.advance(hours=3)
    errors: list[str] = []
    env.emulator.trusted_ips = {"10.0.0.9"}
    with pytest.raises(IPNotTrusted) as exc:
        await client.get_user("lisi")
    errors.append(str(exc.value))
    tokens = env.emulator.issued_tokens()
    assert len(tokens) == 2
    refreshes = [r for r in caplog.records if r.getMessage() == "wecom access token refreshed"]
    assert len(refreshes) == 2 and all(r.__dict__["expires_in"] == 7200 for r in refreshes)
    assert any("retried" in r.getMessage() for r in caplog.records)
    everything = (
        caplog.text + "".join(str(r.__dict__) for r in caplog.records) + "".join(errors) + repr(client)
    )
    for secret in [SECRET, *tokens]:
        assert secret not in everything
