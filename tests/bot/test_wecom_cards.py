"""Cards end to end through the real app and the WeCom emulator (SQLite and PostgreSQL).

A chat message creates a ticket, the handler's card arrives, a click (an encrypted
template_card_event, as WeCom sends it) moves the ticket, every card of the ticket is updated with
its single-use response_code, the requester is told; stale clicks change nothing; urges and CC.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.app import NOTIFIER, RUNTIME
from core.access import allowed_actions
from core.ticket import Ticket
from emulator.wecom import SentMessage
from store.queries import SqlTicketQueries
from tests.bot.test_wecom_chat import Chat, chat  # noqa: F401  (the fixture)

LEAVE = "发起 请假申请 start_date=2024-05-06 end_date=2024-05-07 days=2 reason=家里有事 proxy=zhaolei"


async def _ticket(c: Chat, ticket_id: int) -> Ticket:
    found = await SqlTicketQueries(c.app[RUNTIME].db).get_ticket(ticket_id)
    assert found is not None
    return found


def _buttons(card: SentMessage) -> list[str]:
    return [b["text"] for b in card.body["template_card"].get("button_list", [])]


def _updates_of(c: Chat, card: SentMessage) -> list[dict[str, Any]]:
    return [u.body for u in c.emulator.records.updates if u.msgid == card.msgid]


async def _create_leave(c: Chat) -> int:
    reply = await c.say("LiuYang", LEAVE)
    assert reply.startswith("已发起工单"), reply
    return int(reply.rsplit("/tickets/", 1)[1].split("?")[0])


async def test_a_chat_ticket_reaches_its_handler_as_a_card_with_exactly_their_buttons(chat: Chat) -> None:  # noqa: F811
    ticket_id = await _create_leave(chat)
    (card,) = chat.cards("WangQiang")
    tc = card.body["template_card"]
    assert tc["card_type"] == "button_interaction"
    assert tc["main_title"]["title"].startswith("请假申请")
    assert tc["card_action"]["type"] == 1  # the ticket page, signed for the card's recipient
    assert tc["card_action"]["url"].startswith(f"https://bot.example.com/tickets/{ticket_id}?u=wangqiang&")
    rows = {r["keyname"]: r["value"] for r in tc["horizontal_content_list"]}
    assert rows["申请人"] == "刘洋" and rows["当前状态"] == "部门领导审批"
    runtime = chat.app[RUNTIME]
    ticket = await _ticket(chat, ticket_id)
    wf = runtime.catalog.get(ticket.workflow_id)
    assert wf is not None
    expected = [
        a.name
        for a in allowed_actions(ticket, wf, await runtime.directory.org(), "wangqiang")
        if a.kind.value == "transition"
    ]
    assert _buttons(card) == expected == ["同意", "驳回"]
    assert chat.cards("LiuYang") == []  # the requester has no decision to make


async def test_a_click_moves_the_ticket_updates_the_card_and_tells_the_requester(chat: Chat) -> None:  # noqa: F811
    ticket_id = await _create_leave(chat)
    (card,) = chat.cards("WangQiang")
    await chat.click("WangQiang", card, "同意")

    ticket = await _ticket(chat, ticket_id)
    assert ticket.state_id == 104  # 人事备案 (2 days: no general manager)
    (update,) = _updates_of(chat, card)
    assert update["template_card"]["replace_text"].startswith("已同意 · 王强")
    rows = {r["keyname"]: r["value"] for r in update["template_card"]["horizontal_content_list"]}
    assert rows["当前状态"] == "人事备案"

    (notice,) = chat.cards("LiuYang")
    tc = notice.body["template_card"]
    assert tc["card_type"] == "text_notice" and tc["sub_title_text"] == "已同意 · 王强"
    # accept first: both HR members get a 接单 card
    for hr in ("YangFan", "ChenJing"):
        (hr_card,) = chat.cards(hr)
        assert _buttons(hr_card) == ["接单"]


async def test_a_repeated_click_changes_nothing_and_shows_who_decided(chat: Chat) -> None:  # noqa: F811
    ticket_id = await _create_leave(chat)
    (card,) = chat.cards("WangQiang")
    await chat.click("WangQiang", card, "同意")
    before = await _ticket(chat, ticket_id)
    sent_before = len(chat.emulator.records.messages)

    await chat.click("WangQiang", card, "驳回", create_time=1700000200)  # the old card, from another device

    after = await _ticket(chat, ticket_id)
    assert (after.state_id, after.version) == (before.state_id, before.version)
    updates = _updates_of(chat, card)
    assert len(updates) == 2 and updates[1]["template_card"]["replace_text"].startswith("已同意 · 王强")
    assert len(chat.emulator.records.messages) == sent_before  # nobody was told anything new


async def test_accept_first_closes_the_others_cards_and_gives_the_acceptor_the_decisions(chat: Chat) -> None:  # noqa: F811
    ticket_id = await _create_leave(chat)
    await chat.click("WangQiang", chat.cards("WangQiang")[0], "同意")
    (yang,) = chat.cards("YangFan")
    (chen,) = chat.cards("ChenJing")

    await chat.click("YangFan", yang, "接单")

    ticket = await _ticket(chat, ticket_id)
    assert ticket.accepted_by == "yangfan" and ticket.handlers == ("yangfan",)
    assert _updates_of(chat, yang)[0]["template_card"]["replace_text"].startswith("已接单 · 杨帆")
    assert _updates_of(chat, chen)[0]["template_card"]["replace_text"].startswith("已接单 · 杨帆")
    fresh = chat.cards("YangFan")[-1]
    assert fresh is not yang and "备案完成" in _buttons(fresh)

    # ChenJing's stale 接单 click changes nothing
    await chat.click("ChenJing", chen, "接单", create_time=1700000300)
    assert (await _ticket(chat, ticket_id)).accepted_by == "yangfan"

    # the last step ends the ticket: the stand-in (field proxy) gets a read-only CC card
    await chat.click("YangFan", fresh, "备案完成", create_time=1700000400)
    ended = await _ticket(chat, ticket_id)
    assert ended.is_ended
    (cc,) = chat.cards("ZhaoLei")
    assert cc.body["template_card"]["card_type"] == "text_notice" and not _buttons(cc)
    notices = [m.body["template_card"]["sub_title_text"] for m in chat.cards("LiuYang")]
    assert notices == ["已同意 · 王强", "已备案完成 · 杨帆"]


async def test_every_card_of_the_ticket_is_closed_when_one_handler_decides(chat: Chat) -> None:  # noqa: F811
    """A decision by chat text (not a click) updates the card too."""
    ticket_id = await _create_leave(chat)
    (card,) = chat.cards("WangQiang")
    reply = await chat.say("WangQiang", f"同意 {ticket_id}")
    assert reply.startswith("已同意工单")
    (update,) = _updates_of(chat, card)
    assert update["template_card"]["replace_text"].startswith("已同意 · 王强")


async def test_a_stranger_clicking_a_forwarded_card_changes_nothing(chat: Chat) -> None:  # noqa: F811
    ticket_id = await _create_leave(chat)
    (card,) = chat.cards("WangQiang")
    await chat.click("SunHao", card, "同意")
    ticket = await _ticket(chat, ticket_id)
    assert ticket.state_id == 102
    assert chat.app[NOTIFIER] is not None


async def test_a_card_key_edited_to_another_ticket_is_refused_and_logged(
    chat: Chat,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = [await _create_leave(chat), await _create_leave(chat)]
    card_a, card_b = chat.cards("WangQiang")
    before = [await _ticket(chat, i) for i in ids]
    sent_before = len(chat.emulator.records.messages)
    with caplog.at_level(logging.INFO, logger="ticketbot.clicks"):
        await chat.click(
            "WangQiang", card_a, "同意", edit=lambda key: key.replace(f"t:{ids[0]}:", f"t:{ids[1]}:", 1)
        )
    after = [await _ticket(chat, i) for i in ids]
    assert [(t.state_id, t.version) for t in after] == [(t.state_id, t.version) for t in before]
    assert _updates_of(chat, card_a) == [] and _updates_of(chat, card_b) == []
    (told,) = chat.emulator.records.messages[sent_before:]
    assert told.recipients == ("WangQiang",) and "按钮已失效" in told.body["text"]["content"]
    assert "card click refused: its key names another ticket than the card clicked" in caplog.messages


async def test_a_ticket_asked_for_step_by_step_in_chat_reaches_the_handler(chat: Chat) -> None:  # noqa: F811
    first = await chat.say("LiuYang", "发起 请假申请")
    assert "请假类型" in first or "开始日期" in first, first
    replies = [first]
    answers = iter(["年假", "2024-05-06", "2024-05-07", "2", "家里有事"])
    while "已发起工单" not in replies[-1]:
        assert len(replies) < 10, replies
        replies.append(await chat.say("LiuYang", next(answers)))
    ticket_id = int(replies[-1].rsplit("/tickets/", 1)[1].split("?")[0])
    ticket = await _ticket(chat, ticket_id)
    assert ticket.fields["days"] == 2 and ticket.handlers == ("wangqiang",)
    (card,) = chat.cards("WangQiang")
    assert _buttons(card) == ["同意", "驳回"]


async def test_urge_and_cc_from_chat(chat: Chat) -> None:  # noqa: F811
    reply = await chat.say("LiuYang", LEAVE + " 抄送=孙浩")
    ticket_id = int(reply.rsplit("/tickets/", 1)[1].split("?")[0])
    (cc,) = chat.cards("SunHao")
    assert cc.body["template_card"]["card_type"] == "text_notice"
    assert "抄送" in cc.body["template_card"]["main_title"]["desc"]

    urged = await chat.say("LiuYang", f"催办 {ticket_id}")
    assert "已催办" in urged and "王强" in urged, urged
    pending, urge = chat.cards("WangQiang")
    assert urge.body["template_card"]["main_title"]["desc"].startswith("刘洋 催办了此工单")
    assert _buttons(urge) == ["同意", "驳回"]
    again = await chat.say("LiuYang", f"催办 {ticket_id}")
    assert "分钟后" in again, again
    assert len(chat.cards("WangQiang")) == 2

    await chat.click("WangQiang", urge, "同意")  # deciding on the urge card closes both cards
    assert len(_updates_of(chat, pending)) == 1 and len(_updates_of(chat, urge)) == 1
