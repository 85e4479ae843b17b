"""The emulators' chaos switches: stalled calls, gateway errors, duplicated and replayed callbacks,
and the HTTP control surface that flips them from another process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from emulator.chaos import Redelivery, Stalls
from emulator.control import Control
from emulator.dingtalk import DingTalkEmulator
from emulator.merge import merged_app
from emulator.wecom import WeComEmulator
from tests.fakes import FakeClock

CORP, AGENT, SECRET = "ww-chaos", 1000002, "chaos-secret"


def _emulators() -> tuple[WeComEmulator, DingTalkEmulator]:
    clock = FakeClock()
    wecom = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock)
    ding = DingTalkEmulator("ak", "as", "ak", clock)
    return wecom, ding


async def _client(
    aiohttp_client: Any, redelivery: dict[str, Redelivery] | None = None
) -> tuple[TestClient[web.Request, web.Application], WeComEmulator, DingTalkEmulator]:
    wecom, ding = _emulators()
    app = merged_app(wecom.app(), ding.app())
    Control(wecom=wecom, dingtalk=ding, redelivery=redelivery).add_routes(app)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    return client, wecom, ding


async def _token(client: TestClient[web.Request, web.Application]) -> int:
    resp = await client.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET})
    return resp.status


async def test_a_stalled_call_answers_only_when_released() -> None:
    stalls = Stalls()
    stalls.stall_next(1, path="/a")
    waiter = asyncio.create_task(stalls.wait("/a"))
    other = asyncio.create_task(stalls.wait("/b"))
    await other  # another path is not held
    async with asyncio.timeout(2):
        await stalls.holding.wait()
    assert stalls.waiting == 1 and not waiter.done()
    stalls.release()
    async with asyncio.timeout(2):
        await waiter
    assert (stalls.stalled, stalls.waiting) == (1, 0)
    await stalls.wait("/a")  # used up: the next call is not held
    assert stalls.stalled == 1


def test_stall_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Stalls().stall_next(0)
    with pytest.raises(ValueError, match="seconds"):
        Stalls().stall_next(1, seconds=-1)


async def test_wecom_gateway_errors_and_stalls_over_http(aiohttp_client: Any) -> None:
    client, wecom, _ = await _client(aiohttp_client)
    wecom.fail_next_http(1, 502, path="/cgi-bin/gettoken")
    resp = await client.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET})
    assert resp.status == 502 and "emulated gateway error" in await resp.text()
    assert [f.errcode for f in wecom.records.failures] == [502]
    assert await _token(client) == 200  # only the next one failed

    wecom.stall_next(1, path="/cgi-bin/gettoken")
    pending = asyncio.create_task(_token(client))
    async with asyncio.timeout(2):
        await wecom.stalls.holding.wait()
    assert not pending.done()
    wecom.stalls.release()
    async with asyncio.timeout(2):
        assert await pending == 200
    with pytest.raises(ValueError, match=r"500\.\.599"):
        wecom.fail_next_http(1, 404)


async def test_redelivery_duplicates_and_replays_the_same_request() -> None:
    sent: list[int] = []

    def sender(n: int) -> Any:
        async def send() -> int:
            sent.append(n)
            return n

        return send

    redelivery = Redelivery(keep=2)
    redelivery.duplicate_next(1)
    assert await redelivery.deliver(sender(1)) == 1
    await redelivery.deliver(sender(2))
    await redelivery.deliver(sender(3))
    assert sent == [1, 1, 2, 3] and redelivery.duplicates_sent == 1
    assert redelivery.kept == 2  # only the last two are kept
    assert await redelivery.replay(1) == 1 and sent[-1] == 2
    assert await redelivery.replay() == 1 and sent[-1] == 3
    assert await redelivery.replay() == 0 and redelivery.replays_sent == 2
    redelivery.duplicate_ratio(1.0)
    await redelivery.deliver(sender(4))
    assert sent[-2:] == [4, 4]
    with pytest.raises(ValueError, match=r"0\.\.1"):
        redelivery.duplicate_ratio(2)


async def test_the_control_surface_flips_switches_and_shows_records(aiohttp_client: Any) -> None:
    redelivery = Redelivery()
    client, wecom, _ = await _client(aiohttp_client, {"wecom": redelivery})
    resp = await client.post(
        "/_emulator/chaos", json={"platform": "wecom", "switch": "fail_next", "n": 1, "errcode": 45009}
    )
    assert resp.status == 200, await resp.text()
    got = await (await client.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET})).json()
    assert got["errcode"] == 45009

    resp = await client.post(
        "/_emulator/chaos", json={"platform": "dingtalk", "switch": "fail_next", "n": 1, "failure": 503}
    )
    assert resp.status == 200
    ding_resp = await client.post("/v1.0/oauth2/accessToken", json={"appKey": "ak", "appSecret": "as"})
    assert ding_resp.status == 503

    resp = await client.post(
        "/_emulator/chaos", json={"platform": "wecom", "switch": "duplicate_next", "n": 2}
    )
    assert resp.status == 200
    assert redelivery._duplicate_next == 2

    assert await _token(client) == 200
    records = await (await client.get("/_emulator/records", params={"platform": "wecom"})).json()
    assert [f["errcode"] for f in records["failures"]] == [45009]
    assert records["token_requests"][0]["corpid"] == CORP
    only = await (
        await client.get("/_emulator/records", params={"platform": "dingtalk", "kind": "failures"})
    ).json()
    assert list(only) == ["failures"] and only["failures"][0]["status"] == 503

    await client.post("/_emulator/chaos", json={"platform": "wecom", "switch": "expire_tokens"})
    assert wecom._current == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"platform": "wecom", "switch": "nope"}, "unknown switch"),
        ({"platform": "teams", "switch": "release"}, "unknown platform"),
        ({"platform": "wecom", "switch": "fail_next", "n": "x", "errcode": 1}, "'n' must be an integer"),
        ({"platform": "wecom", "switch": "fail_ratio", "ratio": 3}, "within 0..1"),
        ({"platform": "dingtalk", "switch": "duplicate_next", "n": 1}, "no callback delivery"),
        ({"platform": "wecom", "switch": "stall_next", "n": 0}, "at least 1"),
        ([1, 2], "JSON object"),
        ({"platform": "wecom", "switch": "replay", "k": -1}, "must not be negative"),
    ],
)
async def test_bad_switches_are_400_and_change_nothing(aiohttp_client: Any, body: Any, message: str) -> None:
    client, wecom, _ = await _client(aiohttp_client, {"wecom": Redelivery()})
    resp = await client.post("/_emulator/chaos", json=body)
    assert resp.status == 400
    assert message in (await resp.json())["error"]
    assert wecom._chaos == [] and wecom.stalls.waiting == 0
    assert await _token(client) == 200


@pytest.mark.parametrize(
    ("raw", "headers"),
    [
        (b"[" * 100_000 + b"]" * 100_000, {}),
        (b'{"platform": "wecom"}', {"Content-Type": "application/json; charset=no-such-charset"}),
        (b"\xff\xfe{", {}),
    ],
    ids=["too-deep", "unknown-charset", "not-utf8"],
)
async def test_unreadable_chaos_bodies_are_400(
    aiohttp_client: Any, raw: bytes, headers: dict[str, str]
) -> None:
    client, wecom, _ = await _client(aiohttp_client, {"wecom": Redelivery()})
    resp = await client.post("/_emulator/chaos", data=raw, headers=headers)
    assert resp.status == 400 and "JSON object" in (await resp.json())["error"]
    assert wecom._chaos == []


async def test_records_of_an_unknown_platform_or_kind_are_400(aiohttp_client: Any) -> None:
    client, _, _ = await _client(aiohttp_client)
    assert (await client.get("/_emulator/records", params={"platform": "x"})).status == 400
    resp = await client.get("/_emulator/records", params={"platform": "wecom", "kind": "x"})
    assert resp.status == 400 and "known:" in (await resp.json())["error"]


def test_control_routes_are_added() -> None:
    app = web.Application()
    Control().add_routes(app)
    assert {r.resource.canonical for r in app.router.routes() if r.resource} == {
        "/_emulator/records",
        "/_emulator/chaos",
    }
