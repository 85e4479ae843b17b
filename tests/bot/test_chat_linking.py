"""Linking chat records to a work order from chat (关联 <order_no> ... 完成), through the conversation
with the real service and store (SQLite and PostgreSQL) and a fake clock: what is linked, what is
refused, expiry, and a message processed twice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import Runtime, build_runtime
from bot.handlers.conversation import Conversation
from bot.handlers.linking import Linking
from config.settings import load_settings
from core import commands as c
from core.order_no import order_no
from core.service import Done
from store.chat_links import SqlChatLinks
from store.chat_records import SqlChatRecords
from store.drafts import SqlDraftStore
from store.queries import SqlTicketQueries
from tests.bot.test_conversation import CONFIG, PUBLIC
from tests.fakes import FakeClock

FAULT = {"customer_name": "大大怪", "category": "fault", "priority": "high", "description": "连不上网"}
LEAVE = {
    "leave_type": "annual",
    "start_date": "2026-03-02",
    "end_date": "2026-03-03",
    "days": 2,
    "reason": "事",
}


class Linked:
    def __init__(self, runtime: Runtime, clock: FakeClock) -> None:
        self.runtime = runtime
        self.clock = clock
        queries = SqlTicketQueries(runtime.db)
        self.records = SqlChatRecords(runtime.db)
        self.links = SqlChatLinks(runtime.db)
        linking = Linking(self.links, self.records, queries, runtime.catalog, runtime.directory, clock=clock)
        self.chat = Conversation(
            runtime.service,
            queries,
            runtime.catalog,
            runtime.directory,
            PUBLIC,
            drafts=SqlDraftStore(runtime.db),
            clock=clock,
            linking=linking,
        )
        self._ids = 0

    async def say(self, user: str, text: str, *, key: str | None = None, platform: str = "wecom") -> str:
        if key is None:
            self._ids += 1
            key = f"{platform}:{self._ids}"
        return await self.chat.reply_to(user, text, platform, request_key=key)

    async def order(self, creator: str = "xuli") -> int:
        done = await self.runtime.service.create(c.Create(creator, 3, 351, FAULT))
        assert isinstance(done, Done), done
        return done.ticket.id


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Linked]:
    runtime = await build_runtime(load_settings(env={}, database_url=database_url, config_dir=CONFIG))
    try:
        yield Linked(runtime, FakeClock())
    finally:
        await runtime.db.dispose()


async def test_start_link_three_messages_and_finish(env: Linked) -> None:
    ticket_id = await env.order()
    no = order_no(ticket_id)
    started = await env.say("xuli", f"关联 {no}")
    assert started.startswith(f"开始关联工单 {no}（大大怪") and "完成" in started
    assert (
        await env.say("xuli", "客户说：路由器连不上网", key="wecom:m1")
        == f"已关联到工单 {no}，共 1 条；发“完成”结束"
    )
    assert (
        await env.say("xuli", "指示灯闪红灯", key="wecom:m2") == f"已关联到工单 {no}，共 2 条；发“完成”结束"
    )
    env.clock.advance(minutes=20)
    assert await env.say("xuli", "帮助", key="wecom:m3") == f"已关联到工单 {no}，共 3 条；发“完成”结束"
    done = await env.say("xuli", "完成")
    assert done == f"已结束关联工单 {no}，该工单共关联 3 条聊天记录。"
    assert await env.records.linked(ticket_id) == ["wecom:m1", "wecom:m2", "wecom:m3"]
    kept = await env.records.get(["wecom:m1", "wecom:m3"])
    assert [(r.source, r.from_id, r.content["text"]) for r in kept] == [
        ("chat", "xuli", "客户说：路由器连不上网"),
        ("chat", "xuli", "帮助"),
    ]
    assert await env.links.current("wecom", "xuli") is None
    assert "可以这样跟我说" in await env.say("xuli", "帮助")  # back to the usual conversation


async def test_english_link_and_done_and_cancel(env: Linked) -> None:
    ticket_id = await env.order()
    no = order_no(ticket_id)
    assert (await env.say("xuli", f"link {no}")).startswith(f"Linking to work order {no}")
    assert (
        await env.say("xuli", "the router is broken")
        == f'Linked to work order {no} (1 in all); send "done" to finish'
    )
    assert (await env.say("xuli", "done")).startswith(f"Finished linking to work order {no}")
    assert (await env.say("xuli", f"关联 #{no}")).startswith(f"开始关联工单 {no}")
    assert (await env.say("xuli", "取消")).startswith(f"已结束关联工单 {no}")
    assert await env.links.current("wecom", "xuli") is None


async def test_sessions_are_per_platform_and_person(env: Linked) -> None:
    ticket_id = await env.order()
    no = order_no(ticket_id)
    await env.say("xuli", f"关联 {no}", platform="wecom")
    assert "没有看懂" in await env.say("xuli", "随便说说", platform="dingtalk")
    assert "没有看懂" in await env.say("wujuan", "随便说说")
    assert (await env.say("xuli", "随便说说")).startswith(f"已关联到工单 {no}")


async def test_a_message_processed_twice_is_linked_once(env: Linked) -> None:
    ticket_id = await env.order()
    no = order_no(ticket_id)
    await env.say("xuli", f"关联 {no}", key="wecom:start")
    await env.say("xuli", f"关联 {no}", key="wecom:start")  # the start itself, again
    first = await env.say("xuli", "同一条", key="wecom:dup")
    again = await env.say("xuli", "同一条", key="wecom:dup")
    assert first == again == f"已关联到工单 {no}，共 1 条；发“完成”结束"
    assert await env.records.linked(ticket_id) == ["wecom:dup"]


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("关联", "请写上工单号"),
        ("关联 abc", "格式不对"),
        ("关联 12", "格式不对"),
        ("关联 1470000000000000000", "格式不对"),
        ("link 9999999999999999999999", "not a work order number"),
        ("关联 1470000000999999999", "找不到工单 1470000000999999999，或你无权查看"),
    ],
)
async def test_malformed_and_unknown_orders_are_refused(env: Linked, text: str, answer: str) -> None:
    reply = await env.say("xuli", text)
    assert answer in reply, reply
    assert await env.links.current("wecom", "xuli") is None


async def test_an_order_the_person_may_not_see_or_not_a_work_order_is_refused(env: Linked) -> None:
    ticket_id = await env.order("xuli")
    no = order_no(ticket_id)
    assert "找不到工单" in await env.say("liuyang", f"关联 {no}")  # 技术部, not involved
    assert await env.links.current("wecom", "liuyang") is None
    leave = await env.runtime.service.create(c.Create("liuyang", 1, 151, LEAVE))
    assert isinstance(leave, Done)
    reply = await env.say("liuyang", f"关联 {order_no(leave.ticket.id)}")
    assert reply == f"{order_no(leave.ticket.id)} 不是客服工单，不能关联聊天记录。"
    assert await env.links.current("wecom", "liuyang") is None
    assert (await env.say("wujuan", f"关联 {no}")).startswith("开始关联工单")  # 客服部 handles it


async def test_a_session_expires_after_thirty_minutes_without_a_message(env: Linked) -> None:
    ticket_id = await env.order()
    no = order_no(ticket_id)
    await env.say("xuli", f"关联 {no}")
    env.clock.advance(minutes=29)
    assert (await env.say("xuli", "一")).startswith(f"已关联到工单 {no}，共 1 条")
    env.clock.advance(minutes=30, seconds=1)  # 30 minutes after the last message
    late = await env.say("xuli", "二")
    assert late.startswith(f"关联工单 {no} 已超时结束") and "没有关联" in late
    assert len(await env.records.linked(ticket_id)) == 1
    assert "没有看懂" in await env.say("xuli", "三")  # the session is over: the usual conversation
    await env.say("xuli", f"关联 {no}")
    env.clock.advance(hours=2)  # long gone: the message is handled as usual, without a note
    assert "可以这样跟我说" in await env.say("xuli", "帮助")


async def test_in_a_session_only_an_exact_order_switches_and_other_text_is_linked(env: Linked) -> None:
    first, second = await env.order(), await env.order()
    await env.say("xuli", f"关联 {order_no(first)}")
    assert (await env.say("xuli", "关联一下我的订单")).startswith(f"已关联到工单 {order_no(first)}")
    assert (await env.say("xuli", f"关联 {order_no(second)}")).startswith(f"开始关联工单 {order_no(second)}")
    assert (await env.say("xuli", "发起 请假申请")).startswith(f"已关联到工单 {order_no(second)}")
    assert len(await env.records.linked(first)) == 1 and len(await env.records.linked(second)) == 1


async def test_losing_access_ends_the_session(env: Linked) -> None:
    ticket_id = await env.order()
    no = order_no(ticket_id)
    await env.say("xuli", f"关联 {no}")
    deleted = await env.runtime.service.execute(ticket_id, c.Delete("admin"))
    assert isinstance(deleted, Done), deleted
    reply = await env.say("xuli", "还在吗")
    assert reply.startswith(f"你已无法查看工单 {no}")
    assert await env.links.current("wecom", "xuli") is None
    assert await env.records.linked(ticket_id) == []


async def test_help_tells_how_to_link(env: Linked) -> None:
    assert "关联 工单号" in await env.say("xuli", "帮助")
    assert "link <order no>" in await env.say("xuli", "help")
