"""The demo's WeCom customers (SQLite and PostgreSQL): loaded into the emulator, announced to
ticketbot at start as WeCom's add_external_contact callbacks and kept by it; a member deleting one
through the emulator's control surface reaches ticketbot too."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.app import RUNTIME
from bot.demo import DEMO_CUSTOMERS, Demo, running_demo
from bot.wecom.routes import WECOM_CALLBACKS
from store.customers import SqlCustomers

WAIT = 20


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def demo(database_url: str) -> AsyncIterator[Demo]:
    async with running_demo(port=_port(), emulator_port=_port(), database_url=database_url) as running:
        yield running


async def settle(demo: Demo) -> None:
    async with asyncio.timeout(WAIT):
        while tasks := set(demo.app[WECOM_CALLBACKS].tasks):
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_demo_customers_are_kept_by_ticketbot_and_follow_the_emulator(demo: Demo) -> None:
    await settle(demo)
    customers = SqlCustomers(demo.app[RUNTIME].db)
    ids = [str(c["external_userid"]) for c in DEMO_CUSTOMERS]
    kept = await customers.many(ids)
    assert set(kept) == set(ids)
    dadaguai = kept[ids[0]]
    assert dadaguai.name == "大大怪" and not dadaguai.deleted
    assert [f["userid"] for f in dadaguai.follow_users] == ["LiuYang", "XuLi"]
    assert kept[ids[2]].corp_name == "星星科技"
    assert all(c.bot_status == 200 for c in demo.wecom.contacts.changes)

    async with aiohttp.ClientSession() as session:
        url = f"{demo.urls.chat}_emulator/contacts"
        async with session.post(
            url, json={"action": "delete", "userid": "XuLi", "external_userid": ids[1]}
        ) as resp:
            assert resp.status == 200
    await settle(demo)
    gone = await customers.get(ids[1])
    assert gone is not None and gone.deleted and gone.name == "小小怪"
