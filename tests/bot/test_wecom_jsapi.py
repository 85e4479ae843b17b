"""Ticketbot's wx.agentConfig signature (bot.wecom.jsapi): WeCom's published example, the agent
jsapi_ticket cached and shared, and a signature the WeCom emulator accepts."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.wecom.client import WeComClient
from bot.wecom.jsapi import AgentConfigSigner, agent_config_signature
from emulator.wecom import WeComEmulator
from tests.bot.test_wecom_chat import AGENT, CORP, SECRET, emulator_org
from tests.fakes import FakeClock

PAGE = "https://bot.example.com/sidebar/workorder"


def test_the_signature_of_the_js_sdk_documentation() -> None:
    """The example of the JS-SDK signature appendix (附录1-JS-SDK使用权限签名算法)."""
    ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    signature = agent_config_signature(
        ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value"
    )
    assert signature == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


async def test_the_signer_fetches_the_ticket_once_and_the_emulator_accepts_its_signatures(
    aiohttp_server: Any,
) -> None:
    clock = FakeClock()
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, org=emulator_org())
    server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
    async with aiohttp.ClientSession() as session:
        client = WeComClient(
            session,
            api_base=str(server.make_url("")).rstrip("/"),
            corp_id=CORP,
            corp_secret=SECRET,
            agent_id=AGENT,
            clock=clock,
        )
        signer = AgentConfigSigner(client, clock)
        configs = await asyncio.gather(*(signer.sign(PAGE) for _ in range(3)))
        assert emulator.records.calls.count("/cgi-bin/ticket/get") == 1
        for config in configs:
            call = {**config.to_json(), "url": PAGE, "userid": "XuLi", "jsApiList": ["getContext"]}
            assert emulator.jsapi.check(call)[0] == "agentConfig:ok"
            assert config.corpid == CORP and config.agentid == AGENT
            assert config.timestamp == int(clock.now().timestamp())
        assert len({c.nonce_str for c in configs}) == 3
        other = configs[0].to_json()
        assert (
            emulator.jsapi.check(
                {**other, "url": PAGE + "?x=1", "userid": "XuLi", "jsApiList": ["getContext"]}
            )[0]
            == "agentConfig:fail invalid signature"
        )

        clock.advance(hours=2)  # the ticket is near its end: a fresh one
        fresh = await signer.sign(PAGE)
        assert emulator.records.calls.count("/cgi-bin/ticket/get") == 2
        call = {**fresh.to_json(), "url": PAGE, "userid": "XuLi", "jsApiList": ["getContext"]}
        assert emulator.jsapi.check(call)[0] == "agentConfig:ok"
