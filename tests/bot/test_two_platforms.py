"""WeCom and DingTalk enabled at once (SQLite and PostgreSQL): one person, known on both platforms
by the directory, gets the card on both; a ticket created from WeCom is approved from DingTalk and
both cards show the same result."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import NOTIFIER, RUNTIME, create_app
from bot.dingtalk.routes import DINGTALK_CALLBACKS
from bot.wecom.routes import WECOM_CALLBACKS
from config.settings import load_settings
from emulator.dingtalk import DingTalkEmulator
from emulator.wecom import SystemClock, WeComEmulator
from store.queries import SqlTicketQueries
from tests.bot import test_dingtalk_cards as dt
from tests.bot import test_wecom_chat as wc


class Both:
    def __init__(self, wecom: wc.Chat, ding: dt.Ding) -> None:
        self.wecom = wecom
        self.ding = ding

    async def settle(self) -> None:
        app = self.wecom.app
        async with asyncio.timeout(wc.WAIT):
            while tasks := set(app[WECOM_CALLBACKS].tasks) | set(app[DINGTALK_CALLBACKS].tasks):
                await asyncio.gather(*tasks, return_exceptions=True)
            await app[NOTIFIER].drain()


@pytest.fixture
async def both(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Both:
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
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        TestServer(app, host="127.0.0.1", port=port)
    )
    result = Both(wc.Chat(wecom, client, app, itertools.count(9001)), dt.Ding(ding, client, app))
    await result.settle()
    return result


async def test_created_on_wecom_approved_on_dingtalk_both_cards_agree(both: Both) -> None:
    reply = await both.wecom.say("LiuYang", dt.LEAVE)
    assert reply.startswith("已发起工单"), reply
    ticket_id = int(reply.rsplit("/tickets/", 1)[1].split("?")[0])
    await both.settle()
    (wecom_card,) = both.wecom.cards("WangQiang")
    (ding_card,) = both.ding.cards("wangqiang")
    assert [b["text"] for b in wecom_card.body["template_card"]["button_list"]] == ["同意", "驳回"]
    assert dt._buttons(both.ding.params(ding_card)) == ["同意", "驳回"]

    await both.ding.click("wangqiang", ding_card, "同意")
    await both.settle()

    ticket = await SqlTicketQueries(both.wecom.app[RUNTIME].db).get_ticket(ticket_id)
    assert ticket is not None and ticket.state_id == 104
    (update,) = [u.body for u in both.wecom.emulator.records.updates if u.msgid == wecom_card.msgid]
    assert update["template_card"]["replace_text"].startswith("已同意 · 王强")
    assert both.ding.params(ding_card)["result_text"].startswith("已同意 · 王强")

    # the WeCom card, clicked after the DingTalk decision, changes nothing
    await both.wecom.click("WangQiang", wecom_card, "驳回")
    await both.settle()
    again = await SqlTicketQueries(both.wecom.app[RUNTIME].db).get_ticket(ticket_id)
    assert again is not None and (again.state_id, again.version) == (ticket.state_id, ticket.version)
