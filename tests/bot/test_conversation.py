"""Chat conversation against the real service and store (SQLite and PostgreSQL), with the shipped
config: one message in, one reply out, as the person who sent it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import Runtime, build_runtime
from bot.handlers.conversation import Conversation
from config.settings import load_settings
from store.drafts import SqlDraftStore
from store.queries import SqlTicketQueries
from tests.fakes import FakeClock

CONFIG = Path(__file__).resolve().parents[2] / "config"
PUBLIC = "https://bot.example.com"
LEAVE = "发起 请假申请 start_date=2024-05-06 end_date=2024-05-07 days=2 reason=家里有事"


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    rt = await build_runtime(load_settings(env={}, database_url=database_url, config_dir=CONFIG))
    try:
        yield rt
    finally:
        await rt.db.dispose()


@pytest.fixture
def chat(runtime: Runtime) -> Conversation:
    return Conversation(
        runtime.service, SqlTicketQueries(runtime.db), runtime.catalog, runtime.directory, PUBLIC
    )


async def _create_leave(chat: Conversation, runtime: Runtime) -> int:
    reply = await chat.reply_to("liuyang", LEAVE)
    assert reply.startswith("已发起工单"), reply
    ticket_id = int(reply.rsplit("/tickets/", 1)[1])
    return ticket_id


async def test_help_in_chinese_and_english_lists_the_workflows(chat: Conversation) -> None:
    zh = await chat.reply_to("liuyang", "帮助")
    assert "可以这样跟我说" in zh and "1. 请假申请" in zh
    en = await chat.reply_to("liuyang", "help")
    assert en.startswith("You can say:") and "Workflows you can start:" in en and "1. 请假申请" in en


async def test_create_a_leave_request_in_one_line(chat: Conversation, runtime: Runtime) -> None:
    reply = await chat.reply_to("liuyang", LEAVE)
    lines = reply.splitlines()
    assert lines[0].startswith("已发起工单 ") and "刘洋 请假 2 天" in lines[0], reply
    assert "部门领导审批" in reply and "王强(wangqiang)" in reply
    ticket_id = int(lines[-1].removeprefix(f"{PUBLIC}/tickets/"))
    ticket = await SqlTicketQueries(runtime.db).get_ticket(ticket_id)
    assert ticket is not None and ticket.creator == "liuyang" and ticket.handlers == ("wangqiang",)
    assert ticket.fields["days"] == 2 and ticket.fields["reason"] == "家里有事"


async def test_missing_fields_reply_lists_the_start_form(chat: Conversation) -> None:
    reply = await chat.reply_to("liuyang", "发起 请假 days=2")
    for key in ("start_date", "end_date", "reason", "leave_type"):
        assert key in reply, reply
    assert "annual(年假)" in reply
    assert "示例：发起 1 " in reply and "reason=" in reply
    en = await chat.reply_to("liuyang", "create 1")
    assert "'请假申请' needs these fields:" in en and "Example: create 1 " in en


async def test_ambiguous_and_unknown_workflow_queries(chat: Conversation) -> None:
    assert "没有找到流程" in await chat.reply_to("liuyang", "发起 报销")
    reply = await chat.reply_to("liuyang", "create")
    assert "1. 请假申请" in reply


async def test_pending_list_approve_and_second_approve(chat: Conversation, runtime: Runtime) -> None:
    ticket_id = await _create_leave(chat, runtime)
    queries = SqlTicketQueries(runtime.db)
    ticket = await queries.get_ticket(ticket_id)
    assert ticket is not None
    pending = await chat.reply_to("wangqiang", "待办")
    assert f"{ticket.sn} 刘洋 请假 2 天 部门领导审批" in pending, pending
    assert "没有待你处理的工单" in await chat.reply_to("liuyang", "待办")
    assert ticket.sn in await chat.reply_to("liuyang", "我的工单")

    shown = await chat.reply_to("wangqiang", f"查看 {ticket_id}")
    assert "请假天数: 2" in shown and f"同意 {ticket_id}" in shown, shown

    approved = await chat.reply_to("wangqiang", f"同意 {ticket_id} 好的")
    assert approved.startswith(f"已同意工单 {ticket.sn}"), approved
    assert "人事备案" in approved
    moved = await queries.get_ticket(ticket_id)
    assert moved is not None and moved.state_id == 104

    again = await chat.reply_to("wangqiang", f"approve {ticket.sn}")
    assert again.startswith("Already handled:") and "by you" in again, again


async def test_a_stranger_cannot_act_or_see(chat: Conversation, runtime: Runtime) -> None:
    ticket_id = await _create_leave(chat, runtime)
    assert "找不到工单" in await chat.reply_to("sunhao", f"同意 {ticket_id}")
    assert "不能同意" in await chat.reply_to("liuyang", f"同意 {ticket_id}")


async def test_urge_names_the_handlers_honestly(chat: Conversation, runtime: Runtime) -> None:
    ticket_id = await _create_leave(chat, runtime)
    reply = await chat.reply_to("liuyang", f"催办 {ticket_id}")
    assert "王强(wangqiang)" in reply and "暂未开通" in reply


async def test_unknown_command_and_cancel(chat: Conversation) -> None:
    assert "没有看懂" in await chat.reply_to("liuyang", "你好呀")
    assert "Did you mean: help" in await chat.reply_to("liuyang", "helpp")
    assert await chat.reply_to("liuyang", "cancel") == "OK, cancelled."


async def test_step_by_step_create_with_drafts_in_the_database(runtime: Runtime) -> None:
    clock = FakeClock()
    chat = Conversation(
        runtime.service,
        SqlTicketQueries(runtime.db),
        runtime.catalog,
        runtime.directory,
        PUBLIC,
        drafts=SqlDraftStore(runtime.db),
        clock=clock,
    )
    reply = await chat.reply_to("liuyang", "发起 请假申请 leave_type=年假 days=2 抄送=李娜", platform="wecom")
    assert "开始日期（start_date）" in reply, reply
    assert "did not understand" in await chat.reply_to("liuyang", "2024-05-06", platform="dingtalk")
    assert "结束日期（end_date）" in await chat.reply_to("liuyang", "2024-05-06", platform="wecom")
    clock.advance(minutes=20)
    assert "请假事由（reason）" in await chat.reply_to("liuyang", "2024-05-07", platform="wecom")
    clock.advance(minutes=20)
    reply = await chat.reply_to("liuyang", "家里有事", platform="wecom")
    assert reply.startswith("已发起工单") and "抄送：李娜(lina)" in reply, reply
    ticket = await SqlTicketQueries(runtime.db).get_ticket(int(reply.rsplit("/tickets/", 1)[1]))
    assert ticket is not None and ticket.cc == frozenset({"lina"})
    assert ticket.fields["leave_type"] == "annual" and ticket.fields["start_date"] == "2024-05-06"
    assert await SqlDraftStore(runtime.db).get("wecom", "liuyang", clock.now()) is None

    await chat.reply_to("liuyang", "发起 1", platform="wecom")
    clock.advance(minutes=30)
    assert "did not understand" in await chat.reply_to("liuyang", "annual", platform="wecom")
