"""Step-by-step create, urge and CC in chat (bot.handlers.dialogue / form / conversation), in Chinese
and English, with the shipped config on the real service and store (SQLite here; the conversation
tests cover PostgreSQL), an in-memory draft store and a fake clock (expiry without sleeping)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.app import Runtime, build_runtime
from bot.handlers.conversation import Conversation
from bot.handlers.dialogue import DRAFT_TTL, Draft
from config.settings import load_settings
from core.ports import UrgeOutcome
from core.ticket import Ticket
from store.queries import SqlTicketQueries
from tests.fakes import FakeClock

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

CONFIG = Path(__file__).resolve().parents[2] / "config"
PUBLIC = "https://bot.example.com"
LEAVE = "发起 请假申请 start_date=2024-05-06 end_date=2024-05-07 days=2 reason=家里有事"


class MemoryDrafts:
    """DraftStore in a dict, with the store's expiry rule (expired at `expires_at`, then deleted)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Draft] = {}

    async def get(self, platform: str, username: str, now: datetime) -> Draft | None:
        draft = self.rows.get((platform, username))
        if draft is not None and draft.expires_at <= now:
            del self.rows[(platform, username)]
            return None
        return draft

    async def put(self, draft: Draft) -> None:
        self.rows[(draft.platform, draft.username)] = draft

    async def delete(self, platform: str, username: str) -> None:
        self.rows.pop((platform, username), None)


class FakeUrger:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str, str]] = []
        self.outcome = UrgeOutcome(ok=True, reached=("wangqiang",))

    async def urge(self, ticket_id: int, actor: str, note: str = "") -> UrgeOutcome:
        self.calls.append((ticket_id, actor, note))
        return self.outcome


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    rt = await build_runtime(load_settings(env={}, database_url=database_url, config_dir=CONFIG))
    try:
        yield rt
    finally:
        await rt.db.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def drafts() -> MemoryDrafts:
    return MemoryDrafts()


@pytest.fixture
def urger() -> FakeUrger:
    return FakeUrger()


@pytest.fixture
def chat(runtime: Runtime, drafts: MemoryDrafts, urger: FakeUrger, clock: FakeClock) -> Conversation:
    return Conversation(
        runtime.service,
        SqlTicketQueries(runtime.db),
        runtime.catalog,
        runtime.directory,
        PUBLIC,
        drafts=drafts,
        urger=urger,
        clock=clock,
    )


@pytest.fixture
def plain(runtime: Runtime) -> Conversation:
    """Without a draft store or an urger: today's behaviour."""
    return Conversation(
        runtime.service, SqlTicketQueries(runtime.db), runtime.catalog, runtime.directory, PUBLIC
    )


async def _ticket(runtime: Runtime, reply: str) -> Ticket:
    assert f"{PUBLIC}/tickets/" in reply, reply
    ticket_id = int(reply.rsplit("/tickets/", 1)[1])
    ticket = await SqlTicketQueries(runtime.db).get_ticket(ticket_id)
    assert ticket is not None
    return ticket


def _asks(reply: str, key: str) -> bool:
    """Does the reply ask for the field `key` (the question names it as "name（key）：" / "name (key):")?"""
    return f"（{key}）：" in reply or f"({key}):" in reply


# ---------------------------------------------------------------- step by step


async def test_step_by_step_leave_request_in_chinese(
    chat: Conversation, runtime: Runtime, drafts: MemoryDrafts
) -> None:
    reply = await chat.reply_to("liuyang", "发起 请假申请")
    assert reply.startswith("“请假申请”请填写 请假类型（leave_type）：单选，必填"), reply
    assert "可选：annual=年假、sick=病假" in reply and "默认：annual（年假）" in reply
    assert "回复“跳过”使用默认值" in reply and "回复“取消”放弃填写" in reply
    assert ("chat", "liuyang") in drafts.rows and drafts.rows[("chat", "liuyang")].asking == "leave_type"

    reply = await chat.reply_to("liuyang", "病假")  # a label is read as its key
    assert _asks(reply, "start_date") and "日期，必填" in reply and "例如：2024-05-01" in reply, reply
    reply = await chat.reply_to("liuyang", "2024-05-06")
    assert _asks(reply, "end_date"), reply
    reply = await chat.reply_to("liuyang", "明天")
    assert reply.startswith("“结束日期（end_date）”没有填上：应为日期"), reply
    assert _asks(reply, "end_date")
    reply = await chat.reply_to("liuyang", "２０２４-０５-０７")  # full-width digits are fine
    assert _asks(reply, "days") and "工作日天数" in reply and "默认：1" in reply, reply
    reply = await chat.reply_to("liuyang", "两天")
    assert "应为整数" in reply and _asks(reply, "days"), reply
    reply = await chat.reply_to("liuyang", "2")
    assert _asks(reply, "reason") and "提示：请简要说明请假原因" in reply, reply
    reply = await chat.reply_to("liuyang", "家里有事，需要回老家")

    lines = reply.splitlines()
    assert lines[0].startswith("已发起工单 ") and "刘洋 请假 2 天" in lines[0], reply
    assert "部门领导审批" in reply and "王强(wangqiang)" in reply
    ticket = await _ticket(runtime, reply)
    assert ticket.creator == "liuyang"
    assert ticket.fields["leave_type"] == "sick"
    assert ticket.fields["start_date"] == "2024-05-06" and ticket.fields["end_date"] == "2024-05-07"
    assert ticket.fields["days"] == 2 and ticket.fields["reason"] == "家里有事，需要回老家"
    assert "proxy" not in ticket.fields  # an optional field after the last required one is not asked
    assert drafts.rows == {}


async def test_step_by_step_in_english_with_engine_reasons(
    chat: Conversation, runtime: Runtime, drafts: MemoryDrafts
) -> None:
    reply = await chat.reply_to("liuyang", "create 1 days=3 leave_type=annual")
    assert reply.startswith("'请假申请': please give 开始日期 (start_date): a date, required"), reply
    assert "Example: 2024-05-01" in reply and 'Reply "cancel" to give up.' in reply
    reply = await chat.reply_to("liuyang", "tomorrow")
    assert reply.startswith(
        "开始日期 (start_date) was not accepted: field '开始日期' (start_date) expects a date"
    )
    assert _asks(reply, "start_date")
    reply = await chat.reply_to("liuyang", "2024-05-06")
    assert _asks(reply, "end_date") and "Example: 2026-01-05" in reply, reply  # today, by the clock
    reply = await chat.reply_to("liuyang", "2024-05-08")
    assert _asks(reply, "reason") and "Hint: 请简要说明请假原因" in reply and "a date" not in reply, reply
    reply = await chat.reply_to("liuyang", "moving house")
    assert reply.startswith("Ticket ") and " created: 刘洋 请假 3 天" in reply.splitlines()[0], reply
    assert "State: 部门领导审批" in reply
    ticket = await _ticket(runtime, reply)
    assert ticket.fields["days"] == 3 and ticket.fields["reason"] == "moving house"
    assert drafts.rows == {}


async def test_a_complete_create_line_still_creates_at_once(chat: Conversation, runtime: Runtime) -> None:
    reply = await chat.reply_to("liuyang", LEAVE)
    assert reply.startswith("已发起工单 "), reply
    ticket = await _ticket(runtime, reply)
    assert ticket.fields["leave_type"] == "annual"  # the default, as the engine fills it in


async def test_key_value_pairs_fill_several_fields_during_the_dialogue(
    chat: Conversation, runtime: Runtime
) -> None:
    reply = await chat.reply_to("liuyang", "发起 1 days=2 leave_type=personal")
    assert _asks(reply, "start_date"), reply
    reply = await chat.reply_to("liuyang", "start_date=2024-05-06 end_date＝2024-05-07")
    assert _asks(reply, "reason"), reply
    reply = await chat.reply_to("liuyang", 'reason="家里 有事" proxy=王强 抄送=李娜,zhoumin')
    assert reply.startswith("已发起工单"), reply
    assert "抄送：李娜(lina), 周敏(zhoumin)" in reply
    ticket = await _ticket(runtime, reply)
    assert ticket.fields["reason"] == "家里 有事" and ticket.fields["proxy"] == "wangqiang"
    assert ticket.fields["leave_type"] == "personal"
    assert ticket.cc == frozenset({"lina", "zhoumin"})


async def test_a_bad_value_on_the_create_line_opens_the_dialogue_on_that_field(
    chat: Conversation, runtime: Runtime
) -> None:
    reply = await chat.reply_to(
        "liuyang", "发起 1 leave_type=年假 start_date=2024-13-01 end_date=2024-05-07 days=2 reason=事"
    )
    assert reply.startswith("“开始日期（start_date）”没有填上：应为日期"), reply
    assert _asks(reply, "start_date")
    reply = await chat.reply_to("liuyang", "2024-05-06")
    assert reply.startswith("已发起工单"), reply
    assert (await _ticket(runtime, reply)).fields["start_date"] == "2024-05-06"


async def test_optional_fields_on_the_way_can_be_skipped_required_ones_cannot(
    chat: Conversation, runtime: Runtime
) -> None:
    reply = await chat.reply_to("zhoumin", "发起 客服工单 customer_name=张三")
    assert _asks(reply, "customer_id") and "选填" in reply and "回复“跳过”不填这一项" in reply, reply
    reply = await chat.reply_to("zhoumin", "跳过")
    assert _asks(reply, "category") and "可选：consult=咨询、complaint=投诉" in reply, reply
    reply = await chat.reply_to("zhoumin", "skip")
    assert reply.startswith("这一项必填，不能跳过。") and _asks(reply, "category"), reply
    reply = await chat.reply_to("zhoumin", "Complaint")  # a key in any case
    assert _asks(reply, "priority") and "默认：normal（普通）" in reply, reply
    reply = await chat.reply_to("zhoumin", "跳过。")  # takes the default
    assert _asks(reply, "description") and "直接回复内容即可" in reply, reply
    # a free-text answer that only looks like a command is the answer
    reply = await chat.reply_to("zhoumin", "查看物流一直不更新")
    assert reply.startswith("已发起工单"), reply
    ticket = await _ticket(runtime, reply)
    assert ticket.fields["category"] == "complaint" and ticket.fields["priority"] == "normal"
    assert ticket.fields["description"] == "查看物流一直不更新"
    assert "customer_id" not in ticket.fields and "attachments" not in ticket.fields


async def test_skipping_in_english_and_multi_choice_labels(chat: Conversation, runtime: Runtime) -> None:
    reply = await chat.reply_to("liuyang", "create 2 reason=deploys")
    assert _asks(reply, "system") and "Choices: gitlab=GitLab" in reply, reply
    reply = await chat.reply_to("liuyang", "skip")
    assert reply.startswith("This field is required; it cannot be skipped."), reply
    reply = await chat.reply_to("liuyang", "jenkins")
    assert _asks(reply, "access_level"), reply
    reply = await chat.reply_to("liuyang", "bogus")
    assert "access_level) expects one of" in reply and _asks(reply, "access_level"), reply


async def test_a_quoted_reply_is_taken_literally(chat: Conversation, runtime: Runtime) -> None:
    await chat.reply_to("liuyang", "发起 1 start_date=2024-05-06 end_date=2024-05-07 days=2 leave_type=年假")
    reply = await chat.reply_to("liuyang", "“取消”")
    assert reply.startswith("已发起工单"), reply
    assert (await _ticket(runtime, reply)).fields["reason"] == "取消"


async def test_text_that_names_no_workflow_is_an_answer_to_a_text_field(
    chat: Conversation, runtime: Runtime
) -> None:
    await chat.reply_to("liuyang", "发起 1 start_date=2024-05-06 end_date=2024-05-07 days=2 leave_type=年假")
    reply = await chat.reply_to("liuyang", "申请年假回老家")
    assert reply.startswith("已发起工单"), reply
    assert (await _ticket(runtime, reply)).fields["reason"] == "申请年假回老家"


# ---------------------------------------------------------------- while a draft is open


async def test_cancel_drops_the_draft(chat: Conversation, drafts: MemoryDrafts) -> None:
    await chat.reply_to("liuyang", "发起 请假申请")
    assert await chat.reply_to("liuyang", "取消") == "好的，已放弃填写“请假申请”。"
    assert drafts.rows == {}
    assert "did not understand" in await chat.reply_to("liuyang", "2024-05-06")
    await chat.reply_to("liuyang", "create 1")
    assert await chat.reply_to("liuyang", "cancel") == "OK, the '请假申请' draft was dropped."
    assert await chat.reply_to("liuyang", "cancel") == "OK, cancelled."


async def test_help_keeps_the_draft_and_repeats_the_question(chat: Conversation) -> None:
    await chat.reply_to("liuyang", "发起 1 leave_type=sick")
    reply = await chat.reply_to("liuyang", "帮助")
    assert reply.startswith("可以这样跟我说") and "分步填写" in reply and "抄送=" in reply
    assert reply.endswith("回复“取消”放弃填写。") and _asks(reply, "start_date"), reply
    assert _asks(await chat.reply_to("liuyang", "2024-05-06"), "end_date")
    en = await chat.reply_to("liuyang", "help")
    assert en.startswith("You can say:") and "Step by step:" in en and "CC: add cc=" in en
    assert en.endswith('Reply "cancel" to give up.') and _asks(en, "end_date"), en


async def test_other_commands_run_and_remind_of_the_draft(
    chat: Conversation, runtime: Runtime, drafts: MemoryDrafts
) -> None:
    created = await chat.reply_to("liuyang", LEAVE)
    ticket = await _ticket(runtime, created)
    await chat.reply_to("liuyang", "发起 1 leave_type=sick")
    reply = await chat.reply_to("liuyang", "待办")
    assert reply.startswith("没有待你处理的工单。"), reply
    assert reply.endswith("（“请假申请”还在填写中，等你回复 开始日期（start_date）；回复“取消”放弃。）")
    shown = await chat.reply_to("liuyang", f"查看 {ticket.id}")
    assert shown.startswith(ticket.sn) and "还在填写中" in shown
    en = await chat.reply_to("liuyang", "my tickets")
    assert ticket.sn in en and "waits for 开始日期 (start_date)" in en.splitlines()[-1], en
    bad = await chat.reply_to("liuyang", "create leave 天数=3")  # a malformed create is not an answer
    assert "字段应写成" in bad and "还在填写中" in bad
    assert drafts.rows[("chat", "liuyang")].asking == "start_date"
    assert _asks(await chat.reply_to("liuyang", "2024-05-06"), "end_date")


async def test_a_new_create_replaces_the_draft(chat: Conversation, drafts: MemoryDrafts) -> None:
    await chat.reply_to("liuyang", "发起 请假申请")
    reply = await chat.reply_to("liuyang", "发起 报销")  # names no workflow: the draft stays
    assert "没有找到流程" in reply and "还在填写中" in reply
    assert drafts.rows[("chat", "liuyang")].workflow_id == 1
    reply = await chat.reply_to("liuyang", "发起 IT 权限申请")
    assert _asks(reply, "system"), reply
    assert drafts.rows[("chat", "liuyang")].workflow_id == 2
    assert "system) expects one of" in await chat.reply_to("liuyang", "create 2 system=nope")
    assert drafts.rows[("chat", "liuyang")].fields == {}


async def test_a_new_complete_create_ends_the_draft(chat: Conversation, drafts: MemoryDrafts) -> None:
    await chat.reply_to("liuyang", "发起 请假申请")
    assert (await chat.reply_to("liuyang", LEAVE)).startswith("已发起工单")
    assert drafts.rows == {}


async def test_a_draft_expires_after_30_idle_minutes(
    chat: Conversation, clock: FakeClock, drafts: MemoryDrafts
) -> None:
    await chat.reply_to("liuyang", "发起 1 leave_type=sick")
    assert drafts.rows[("chat", "liuyang")].expires_at == clock.now() + DRAFT_TTL
    clock.advance(minutes=29)
    assert _asks(await chat.reply_to("liuyang", "2024-05-06"), "end_date")  # an answer renews it
    clock.advance(minutes=29)
    assert _asks(await chat.reply_to("liuyang", "2024-05-07"), "days")
    clock.advance(minutes=30)
    assert "did not understand" in await chat.reply_to("liuyang", "2")
    assert drafts.rows == {}


async def test_drafts_are_per_platform_and_person(chat: Conversation, drafts: MemoryDrafts) -> None:
    await chat.reply_to("liuyang", "发起 1 leave_type=sick", platform="wecom")
    assert "did not understand" in await chat.reply_to("liuyang", "2024-05-06", platform="dingtalk")
    assert "did not understand" in await chat.reply_to("zhoumin", "2024-05-06", platform="wecom")
    assert _asks(await chat.reply_to("liuyang", "2024-05-06", platform="wecom"), "end_date")
    assert set(drafts.rows) == {("wecom", "liuyang")}


async def test_skip_without_a_draft(chat: Conversation) -> None:
    assert await chat.reply_to("liuyang", "跳过") == "现在没有正在填写的工单，无需跳过。"
    assert await chat.reply_to("liuyang", "skip") == "Nothing to skip: no ticket is being filled in."


async def test_an_unknown_field_blocks_the_create_until_fixed_or_skipped(
    chat: Conversation, runtime: Runtime
) -> None:
    reply = await chat.reply_to("liuyang", LEAVE + " dayz=5")
    assert reply.startswith("“dayz”没有填上：没有字段 dayz（可填：title, leave_type"), reply
    assert "其余字段都已填好" in reply and "跳过" in reply
    again = await chat.reply_to("liuyang", "ok")
    assert "其余字段都已填好" in again
    reply = await chat.reply_to("liuyang", "跳过")
    assert reply.startswith("已发起工单"), reply
    assert (await _ticket(runtime, reply)).fields["days"] == 2


async def test_a_read_only_field_is_refused_by_name(chat: Conversation) -> None:
    reply = await chat.reply_to("liuyang", "create 3 customer_name=x resolution=done")
    assert "resolution cannot be filled in when starting" in reply, reply


async def test_an_optional_user_field_with_a_bad_name_is_asked_again(
    chat: Conversation, runtime: Runtime
) -> None:
    reply = await chat.reply_to("liuyang", LEAVE + " proxy=nobody")
    assert reply.startswith("“工作代理人（proxy）”没有填上：找不到这些人：nobody"), reply
    assert _asks(reply, "proxy") and "一个人：用户名或姓名" in reply
    reply = await chat.reply_to("liuyang", "王强, 李娜")
    assert "只能填一个人" in reply
    reply = await chat.reply_to("liuyang", "sunhao")
    assert reply.startswith("已发起工单"), reply
    assert (await _ticket(runtime, reply)).fields["proxy"] == "sunhao"


# ---------------------------------------------------------------- CC


async def test_cc_on_the_create_line_by_username_and_alias(chat: Conversation, runtime: Runtime) -> None:
    reply = await chat.reply_to("liuyang", LEAVE + " 抄送=李娜,zhoumin")
    assert "抄送：李娜(lina), 周敏(zhoumin)" in reply, reply
    assert (await _ticket(runtime, reply)).cc == frozenset({"lina", "zhoumin"})
    en = await chat.reply_to(
        "liuyang", "create 1 start_date=2024-05-06 end_date=2024-05-07 days=2 reason=x cc=lina"
    )
    assert "CC: 李娜(lina)" in en, en


async def test_unknown_cc_names_are_listed_and_asked_again(
    chat: Conversation, runtime: Runtime, drafts: MemoryDrafts
) -> None:
    reply = await chat.reply_to("liuyang", LEAVE + " 抄送=nobody,李娜,ghost")
    assert reply.startswith("“抄送人”没有填上：找不到这些人：nobody、ghost。"), reply
    assert "请填写 抄送人：用户名或姓名，用逗号分隔，选填" in reply
    reply = await chat.reply_to("liuyang", "李娜、周敏")
    assert "抄送：李娜(lina), 周敏(zhoumin)" in reply, reply
    assert drafts.rows == {}

    en = "create 1 start_date=2024-05-06 end_date=2024-05-07 days=2 reason=x cc=nobody,lina"
    reply = await chat.reply_to("liuyang", en)
    assert reply.startswith("CC was not accepted: no active user named nobody.\n'请假申请': please give CC:")
    reply = await chat.reply_to("liuyang", "skip")
    assert reply.startswith("Ticket "), reply
    assert (await _ticket(runtime, reply)).cc == frozenset()


async def test_cc_without_a_draft_store(plain: Conversation, runtime: Runtime) -> None:
    reply = await plain.reply_to("liuyang", LEAVE + " 抄送=李娜")
    assert "抄送：李娜(lina)" in reply
    assert (await _ticket(runtime, reply)).cc == frozenset({"lina"})
    assert await plain.reply_to("liuyang", LEAVE + " 抄送=nobody") == "抄送人有误：找不到这些人：nobody。"
    en = await plain.reply_to("liuyang", "create 1 days=2 cc=ghost")
    assert en == "CC: no active user named ghost."


# ---------------------------------------------------------------- without a draft store


async def test_without_a_draft_store_a_create_lists_the_form(plain: Conversation) -> None:
    reply = await plain.reply_to("liuyang", "发起 请假 days=2")
    assert "annual(年假)" in reply and "示例：发起 1 " in reply
    assert "没有看懂" in await plain.reply_to("liuyang", "跳过")


# ---------------------------------------------------------------- urge


async def test_urge_reports_the_urger_outcome(chat: Conversation, runtime: Runtime, urger: FakeUrger) -> None:
    ticket = await _ticket(runtime, await chat.reply_to("liuyang", LEAVE))
    assert (
        await chat.reply_to("liuyang", f"催办 {ticket.id} 请尽快")
        == f"已催办 王强(wangqiang)（工单 {ticket.sn}）。"
    )
    assert urger.calls == [(ticket.id, "liuyang", "请尽快")]
    urger.outcome = UrgeOutcome(ok=True, reached=("wangqiang", "lina"))
    assert await chat.reply_to("liuyang", f"urge {ticket.sn}") == (
        f"Urged 王强(wangqiang), 李娜(lina) (ticket {ticket.sn})."
    )
    assert urger.calls[-1] == (ticket.id, "liuyang", "")

    urger.outcome = UrgeOutcome(ok=False, reason="too_soon", retry_after=90)
    assert "刚刚催办过，请 2 分钟后再催" in await chat.reply_to("liuyang", f"催办 {ticket.id}")
    assert "you may urge it again in 2 min" in await chat.reply_to("liuyang", f"urge {ticket.id}")
    urger.outcome = UrgeOutcome(ok=False, reason="too_many", retry_after=3600)
    assert "请 60 分钟后再催" in await chat.reply_to("liuyang", f"催办 {ticket.id}")
    assert "urge again in 60 min" in await chat.reply_to("liuyang", f"urge {ticket.id}")
    urger.outcome = UrgeOutcome(ok=False, reason="ended")
    assert "已结束，无需催办" in await chat.reply_to("liuyang", f"催办 {ticket.id}")
    assert "has ended; nothing to urge" in await chat.reply_to("liuyang", f"urge {ticket.id}")
    urger.outcome = UrgeOutcome(ok=False, reason="no_handlers")
    assert "当前没有处理人" in await chat.reply_to("liuyang", f"催办 {ticket.id}")
    assert "has no handler right now" in await chat.reply_to("liuyang", f"urge {ticket.id}")
    urger.outcome = UrgeOutcome(ok=False, reason="unreachable")
    assert "王强(wangqiang) 暂时无法通过聊天联系到" in await chat.reply_to("liuyang", f"催办 {ticket.id}")
    assert "cannot be reached in chat" in await chat.reply_to("liuyang", f"urge {ticket.id}")
    urger.outcome = UrgeOutcome(ok=False, reason="other", message="the urge service is down")
    assert await chat.reply_to("liuyang", f"urge {ticket.id}") == "Could not urge: the urge service is down"


async def test_only_someone_who_can_see_the_ticket_may_urge(
    chat: Conversation, runtime: Runtime, urger: FakeUrger
) -> None:
    ticket = await _ticket(runtime, await chat.reply_to("liuyang", LEAVE))
    assert "找不到工单" in await chat.reply_to("sunhao", f"催办 {ticket.id}")
    assert urger.calls == []


async def test_urge_without_an_urger_keeps_todays_answer(plain: Conversation, runtime: Runtime) -> None:
    ticket = await _ticket(runtime, await plain.reply_to("liuyang", LEAVE))
    assert "暂未开通" in await plain.reply_to("liuyang", f"催办 {ticket.id}")


# ---------------------------------------------------------------- a message processed twice


async def test_the_last_answer_processed_again_creates_nothing_more(
    chat: Conversation, runtime: Runtime, drafts: MemoryDrafts
) -> None:
    """A worker died after the ticket was created but before the message was marked done: the
    inbox runs it again. It is answered with the same ticket, and the draft it completed (still
    there if the worker died before dropping it) is dropped; a draft started later is kept."""
    await chat.reply_to(
        "liuyang", "发起 请假申请 leave_type=annual start_date=2024-05-06 end_date=2024-05-07 days=2"
    )
    completed = drafts.rows[("chat", "liuyang")]
    first = await chat.reply_to("liuyang", "家里有事", request_key="wecom:m-9")
    ticket = await _ticket(runtime, first)
    assert drafts.rows == {}

    drafts.rows[("chat", "liuyang")] = completed  # as if the worker died before dropping it
    again = await chat.reply_to("liuyang", "家里有事", request_key="wecom:m-9")
    assert again == first
    assert drafts.rows == {}
    assert await chat.reply_to("liuyang", "家里有事", request_key="wecom:m-9") == first  # no draft now

    later = replace(completed, updated_at=ticket.created_at + timedelta(seconds=1))
    drafts.rows[("chat", "liuyang")] = later
    assert await chat.reply_to("liuyang", "家里有事", request_key="wecom:m-9") == first
    assert drafts.rows == {("chat", "liuyang"): later}  # someone's new draft is not theirs to drop
    mine = await SqlTicketQueries(runtime.db).list_tickets(username="liuyang", category="owner")
    assert [t.id for t in mine[0]] == [ticket.id]


async def test_a_one_line_create_processed_again_answers_with_its_ticket(
    plain: Conversation, runtime: Runtime
) -> None:
    first = await plain.reply_to("liuyang", LEAVE, request_key="dingtalk:m-1")
    assert await plain.reply_to("liuyang", LEAVE, request_key="dingtalk:m-1") == first
    other = await plain.reply_to("liuyang", LEAVE, request_key="dingtalk:m-2")  # a new message
    assert (await _ticket(runtime, other)).id != (await _ticket(runtime, first)).id
    unkeyed = [await plain.reply_to("liuyang", LEAVE) for _ in range(2)]  # no key: two tickets
    assert len({(await _ticket(runtime, r)).id for r in unkeyed}) == 2


async def test_a_comment_processed_again_is_added_once(plain: Conversation, runtime: Runtime) -> None:
    ticket = await _ticket(runtime, await plain.reply_to("liuyang", LEAVE, request_key="wecom:m-1"))
    first = await plain.reply_to("liuyang", f"评论 {ticket.id} 已附上病历", request_key="wecom:m-2")
    assert await plain.reply_to("liuyang", f"评论 {ticket.id} 已附上病历", request_key="wecom:m-2") == first
    assert "评论已添加" in first and "已发起工单" not in first
    logs = await SqlTicketQueries(runtime.db).flow_logs(ticket.id, desc=False)
    assert [log.suggestion for log in logs if log.suggestion == "已附上病历"] == ["已附上病历"]
