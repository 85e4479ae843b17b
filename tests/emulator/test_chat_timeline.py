"""The chat page's timeline, without a server: emulator records (built by hand, with the product's
own rendered cards from tests/bot/snapshots as payloads) become each person's entries; card
updates change those entries in place, for the right people only; subscribers see every change."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from emulator.chat.timeline import DingTalkFeed, Timeline, WeComFeed, chain
from emulator.chat.views import dingtalk_card, dingtalk_slot, dingtalk_work_notice, wecom_card
from emulator.dingtalk import (
    CardCreated,
    CardUpdated,
    DeliverResult,
    RobotSend,
    StatusBarUpdate,
    WebhookPost,
    WorkNotice,
)
from emulator.wecom import CardUpdate, DroppedMessage, SentMessage

SNAPSHOTS = Path(__file__).resolve().parents[1] / "bot" / "snapshots"
AT = datetime(2026, 11, 21, 6, 5, tzinfo=UTC)


def snapshot(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SNAPSHOTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def sent(
    msgid: str, body: dict[str, Any], recipients: tuple[str, ...], delivered: tuple[str, ...] | None = None
) -> SentMessage:
    return SentMessage(
        msgid,
        1000002,
        str(body["msgtype"]),
        body,
        recipients,
        recipients if delivered is None else delivered,
        (),
        "code-1",
        AT,
    )


# ---------------------------------------------------------------- WeCom


def test_a_wecom_card_reaches_each_member_it_was_delivered_to() -> None:
    timeline = Timeline()
    feed = WeComFeed(timeline)
    feed(sent("m1", snapshot("wecom_pending"), ("WangQiang", "LiNa", "Busy"), ("WangQiang", "LiNa")))

    (entry,) = timeline.entries("wecom", "WangQiang")
    assert (entry.direction, entry.kind, entry.card_id, entry.at) == ("in", "card", "m1", AT)
    card = entry.card
    assert card is not None
    assert (card["look"], card["card_type"], card["source"]) == ("wecom", "button_interaction", "工单助手")
    assert (card["title"], card["desc"], card["sub_title"]) == (
        "请假: 年假三天",
        "待你处理 · 已等待3小时",
        "工单 #7",
    )
    assert card["rows"][0] == {"key": "天数", "value": "3", "url": ""} and len(card["rows"]) == 6
    assert [(b["text"], b["style"]) for b in card["buttons"]] == [("同意", "primary"), ("拒绝", "danger")]
    assert card["buttons"][0]["key"] == "t:7:s:2:a:transition:x:20:n:4"
    assert card["result"] is None
    assert card["links"] == [{"text": "查看详情", "url": "https://tickets.example.com/tickets/7"}]
    assert len(timeline.entries("wecom", "LiNa")) == 1
    assert timeline.entries("wecom", "Busy") == []  # over the rate limit: WeCom dropped it


def test_a_replace_name_update_greys_out_the_buttons_of_the_named_members_only() -> None:
    timeline = Timeline()
    feed = WeComFeed(timeline)
    feed(sent("m1", snapshot("wecom_pending"), ("WangQiang", "LiNa")))
    feed(CardUpdate("m1", "code-1", ("WangQiang",), snapshot("wecom_update_replace_name"), AT))

    (mine,) = timeline.entries("wecom", "WangQiang")
    assert mine.version == 2 and mine.card is not None
    assert mine.card["result"] == "已同意 · 鲍勃 · 01-05 17:00" and mine.card["buttons"] == []
    assert mine.card["title"] == "请假: 年假三天"  # the rest of the card stays
    (hers,) = timeline.entries("wecom", "LiNa")
    assert hers.version == 1 and hers.card is not None and len(hers.card["buttons"]) == 2


def test_a_template_card_update_redraws_the_card_with_its_replace_text() -> None:
    timeline = Timeline()
    feed = WeComFeed(timeline)
    feed(sent("m1", snapshot("wecom_pending"), ("WangQiang",)))
    feed(CardUpdate("m1", "code-1", ("WangQiang",), snapshot("wecom_update_template_card"), AT))

    (entry,) = timeline.entries("wecom", "WangQiang")
    assert entry.card is not None
    assert entry.card["result"] == "已同意 · 鲍勃 · 01-05 17:00"
    assert entry.card["buttons"] == []  # the placeholder button is never shown
    assert {r["key"]: r["value"] for r in entry.card["rows"]}["当前状态"] == "运维处理"
    # an update for a card someone never got changes nothing
    feed(CardUpdate("m-unknown", "code-2", ("WangQiang",), snapshot("wecom_update_replace_name"), AT))
    assert timeline.entries("wecom", "WangQiang") == [entry]


def test_wecom_text_messages_and_notices() -> None:
    timeline = Timeline()
    feed = WeComFeed(timeline)
    feed(sent("m1", {"msgtype": "text", "agentid": 1, "text": {"content": "已发起工单 #7"}}, ("LiuYang",)))
    feed(sent("m2", snapshot("wecom_cc"), ("LiuYang",)))
    feed(DroppedMessage("m3", "LiuYang", "over 30/min", AT))

    text, notice = timeline.entries("wecom", "LiuYang")
    assert (text.kind, text.text) == ("text", {"text": "已发起工单 #7", "format": "plain", "title": ""})
    assert notice.card is not None and notice.card["card_type"] == "text_notice"
    assert notice.card["buttons"] == [] and notice.card["result"] is None
    assert [e.seq for e in (text, notice)] == sorted(e.seq for e in (text, notice))


def test_wecom_card_parts_the_page_draws() -> None:
    view = wecom_card(
        {
            "card_type": "button_interaction",
            "main_title": {"title": "T"},
            "emphasis_content": {"title": "3", "desc": "天"},
            "quote_area": {"type": 1, "url": "https://q.example", "title": "引用", "quote_text": "原文"},
            "horizontal_content_list": [
                {"keyname": "链接", "value": "打开", "type": 1, "url": "https://x.example"},
                {"keyname": "审批人", "value": "", "type": 3, "userid": "WangQiang"},
            ],
            "jump_list": [{"type": 1, "title": "流程图", "url": "https://j.example"}],
            "button_list": [{"text": "A", "key": "a", "style": 3}, {"text": "B", "key": "b", "style": 4}],
        },
        name_of=lambda userid: {"WangQiang": "王强"}.get(userid, ""),
    )
    assert view["emphasis"] == {"title": "3", "desc": "天"}
    assert view["quote"] == {"title": "引用", "text": "原文", "url": "https://q.example"}
    assert view["rows"] == [
        {"key": "链接", "value": "打开", "url": "https://x.example"},
        {"key": "审批人", "value": "王强", "url": ""},
    ]
    assert [b["style"] for b in view["buttons"]] == ["outline", "default"]
    assert view["links"] == [{"text": "流程图", "url": "https://j.example"}]


# ---------------------------------------------------------------- DingTalk


class Cards:
    """A stand-in for the DingTalk emulator's card state (public params, private data)."""

    def __init__(self) -> None:
        self.state: dict[str, tuple[dict[str, str], dict[str, Any]]] = {}

    def __call__(self, out_track_id: str) -> tuple[dict[str, str], dict[str, Any]]:
        return self.state[out_track_id]


def created(track: str, params: dict[str, str], *spaces: tuple[str, bool]) -> CardCreated:
    results = tuple(DeliverResult("IM_ROBOT", user, ok) for user, ok in spaces)
    space = "dtv1.card//" + ";".join(f"IM_ROBOT.{u}" for u, _ in spaces)
    return CardCreated(track, "tpl", params, {}, space, "HTTP", "ticketbot", results, {}, AT)


def test_a_dingtalk_card_is_drawn_from_its_variables_and_updated_in_place() -> None:
    timeline = Timeline()
    cards = Cards()
    feed = DingTalkFeed(timeline, cards)
    pending = snapshot("dingtalk_pending")["card"]
    cards.state["tb_7_1"] = (pending, {})
    feed(created("tb_7_1", pending, ("staff0004", True), ("gone01", False)))

    (entry,) = timeline.entries("dingtalk", "staff0004")
    assert entry.card_id == "tb_7_1" and entry.card is not None
    assert (entry.card["look"], entry.card["title"], entry.card["desc"]) == (
        "dingtalk",
        "请假: 年假三天",
        "待你处理 · 已等待3小时",
    )
    assert [(b["text"], b["style"]) for b in entry.card["buttons"]] == [
        ("同意", "primary"),
        ("拒绝", "danger"),
    ]
    assert {r["key"]: r["value"] for r in entry.card["rows"]}["当前状态"] == "领导审批"
    assert timeline.entries("dingtalk", "gone01") == []  # not delivered

    done = snapshot("dingtalk_result")["update"]
    cards.state["tb_7_1"] = (done, {})
    feed(CardUpdated("tb_7_1", done, {}, False, False, {}, AT, "callback"))
    (entry,) = timeline.entries("dingtalk", "staff0004")
    assert entry.version == 2 and entry.card is not None
    assert entry.card["result"] == "已同意 · 鲍勃 · 01-05 17:00" and entry.card["buttons"] == []


def test_private_data_overrides_the_public_variables_for_that_person_only() -> None:
    timeline = Timeline()
    cards = Cards()
    feed = DingTalkFeed(timeline, cards)
    pending = snapshot("dingtalk_pending")["card"]
    mine = {"cardParamMap": {"status": "done", "result_text": "已同意 · 王强"}}
    cards.state["tb_7_1"] = (pending, {"staff0004": mine})
    feed(created("tb_7_1", pending, ("staff0004", True), ("staff0003", True)))

    (his,) = timeline.entries("dingtalk", "staff0004")
    (hers,) = timeline.entries("dingtalk", "staff0003")
    assert his.card is not None and his.card["result"] == "已同意 · 王强" and his.card["buttons"] == []
    assert hers.card is not None and hers.card["result"] is None and len(hers.card["buttons"]) == 2


def test_dingtalk_buttons_follow_the_template() -> None:
    params = dict(snapshot("dingtalk_pending")["card"])
    assert dingtalk_slot(params, "t:7:s:2:a:transition:x:21:n:4") == 2
    assert dingtalk_slot(params, "t:7:s:2:a:transition:x:99:n:4") is None
    params["btn2_style"] = "weird"  # the template shows no slot for another style
    assert [b["text"] for b in dingtalk_card(params)["buttons"]] == ["同意"]
    assert dingtalk_slot(params, "t:7:s:2:a:transition:x:21:n:4") is None
    params["status"] = "done"
    assert dingtalk_card(params)["buttons"] == [] and dingtalk_slot(params, params["btn1_action"]) is None
    info = snapshot("dingtalk_info")["card"]  # done without a result text: nothing greyed
    assert dingtalk_card(info)["result"] is None


def test_dingtalk_replies_robot_messages_and_work_notifications() -> None:
    timeline = Timeline()
    feed = DingTalkFeed(timeline, Cards())
    feed.note_conversation("cid-abc", "staff0005")
    feed(WebhookPost("s1", "cid-abc", "text", {"msgtype": "text", "text": {"content": "好的"}}, (), AT))
    feed(
        WebhookPost(
            "s2",
            "cid-single-staff0004",
            "markdown",
            {"msgtype": "markdown", "markdown": {"title": "T", "text": "**粗**"}},
            (),
            AT,
        )
    )
    feed(WebhookPost("s3", "cid-someone-else", "text", {"msgtype": "text", "text": {"content": "?"}}, (), AT))
    feed(
        RobotSend(
            "k",
            "robot",
            ("staff0005", "x"),
            "sampleText",
            {"content": "待办 3 件"},
            ("staff0005",),
            ("x",),
            (),
            AT,
        )
    )
    oa = snapshot("dingtalk_pending")["oa"]
    feed(WorkNotice(42, 3000001, ("staff0005",), ("staff0005",), (), {"msgtype": "oa", "oa": oa}, AT))

    reply, robot, notice = timeline.entries("dingtalk", "staff0005")
    assert reply.text == {"text": "好的", "format": "plain", "title": ""}
    assert robot.text is not None and robot.text["text"] == "待办 3 件"
    assert notice.card_id == "oa-42" and notice.card is not None
    assert notice.card["status"] == {"text": "待处理", "color": "#FF9200"}
    assert notice.card["links"][0]["url"] == "https://tickets.example.com/tickets/7"
    (md,) = timeline.entries("dingtalk", "staff0004")
    assert md.text == {"text": "**粗**", "format": "markdown", "title": "T"}

    feed(StatusBarUpdate(42, "已同意 · 王强", "0xFF9E9E9E", AT))
    (_, _, notice) = timeline.entries("dingtalk", "staff0005")
    assert notice.version == 2 and notice.card is not None
    assert notice.card["status"] == {"text": "已同意 · 王强", "color": "#9E9E9E"}


def test_oa_views_other_message_types() -> None:
    kind, text = dingtalk_work_notice({"msgtype": "text", "text": {"content": "hi"}})
    assert (kind, text["text"]) == ("text", "hi")
    kind, card = dingtalk_work_notice(
        {
            "msgtype": "action_card",
            "action_card": {"title": "T", "markdown": "m", "single_title": "看", "single_url": "https://a"},
        }
    )
    assert kind == "card" and card["links"] == [{"text": "看", "url": "https://a"}]


# ---------------------------------------------------------------- hooks and subscribers


def test_the_feeds_chain_existing_hooks_and_never_raise_into_the_emulator() -> None:
    seen: list[object] = []
    timeline = Timeline()

    def broken(_track: str) -> tuple[dict[str, str], dict[str, Any]]:
        raise KeyError("no such card")

    hook = chain(seen.append, DingTalkFeed(timeline, broken))
    record = created("tb_1", {}, ("staff0004", True))
    hook(record)  # the feed fails inside; the emulator's handler must not see it
    assert seen == [record]
    assert timeline.entries("dingtalk", "staff0004") == []


async def test_subscribers_get_new_and_changed_entries_of_their_person_until_closed() -> None:
    timeline = Timeline()
    feed = WeComFeed(timeline)
    wang = timeline.subscribe("wecom", "WangQiang")
    li = timeline.subscribe("wecom", "LiNa")
    feed(sent("m1", snapshot("wecom_pending"), ("WangQiang",)))
    feed(CardUpdate("m1", "code-1", ("WangQiang",), snapshot("wecom_update_replace_name"), AT))
    async with asyncio.timeout(1):
        first, second = await wang.get(), await wang.get()
    assert first is not None and second is not None
    assert (first.id, first.version) == (second.id, 1) and second.version == 2
    timeline.close()
    async with asyncio.timeout(1):
        assert await wang.get() is None
        assert await li.get() is None  # nothing for her but the end
    late = timeline.subscribe("wecom", "LiNa")
    assert late.closed
    timeline.unsubscribe(wang)
    assert wang.ended.is_set() and timeline.subscriptions("wecom", "WangQiang") == []


def test_entries_json_is_what_the_page_reads() -> None:
    timeline = Timeline(now=lambda: AT)
    entry = timeline.add(
        "wecom", "LiNa", direction="out", kind="text", text={"text": "帮助"}, status="sending"
    )
    data = entry.to_json()
    assert data["id"] == "e1" and data["at"] == AT.isoformat() and data["status"] == "sending"
    assert json.loads(json.dumps(data)) == data
    with pytest.raises(KeyError):
        timeline.replace("e99", status="sent")
