"""The demo's WeCom customers (SQLite and PostgreSQL): loaded into the emulator, announced to
ticketbot at start as WeCom's add_external_contact callbacks and kept by it; a member deleting one
through the emulator's control surface reaches ticketbot too."""

from __future__ import annotations

import aiohttp

from bot.app import RUNTIME
from bot.demo import DEMO_CUSTOMERS, Demo
from store.customers import SqlCustomers
from tests.bot.demo_harness import settle


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
