"""Pure tests of the platform-neutral cards: builders, the button payload codec, the WeCom renderer.

WeCom renders are compared with JSON snapshots in tests/bot/snapshots/; run with
UPDATE_SNAPSHOTS=1 to rewrite them (then review the diff).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cards.build import (
    CHINA_TZ,
    cc_card,
    display_value,
    info_card,
    key_rows,
    pending_card,
    result_card,
    result_text,
    urge_card,
)
from bot.cards.model import (
    Button,
    ButtonAction,
    ButtonStyle,
    Card,
    CardError,
    CardKind,
    Row,
    decode_action,
    encode_action,
)
from bot.cards.wecom import (
    ROW_KEY_MAX,
    ROW_VALUE_MAX,
    TITLE_MAX,
    clean,
    render_wecom,
    render_wecom_update,
    task_id_for,
)
from core.access import Action, ActionKind, allowed_actions
from core.ticket import ActState, FlowLog, InterveneType, Ticket
from core.workflow import Attribute, CustomField, FieldType, ParticipantType, Transition
from tests.core.builders import APPROVE, NOW, OPS, ORG, REJECT, TL, workflow

SNAPSHOTS = Path(__file__).parent / "snapshots"
LINK = "https://tickets.example.com/tickets/7"
AGENT = 1000002


def make_ticket(**kw: Any) -> Ticket:
    base: dict[str, Any] = {
        "id": 7,
        "sn": "loonflow_202601050001",
        "title": "年假三天",
        "workflow_id": 1,
        "workflow_version": "v1",
        "state_id": TL,
        "act_state": ActState.ONGOING,
        "creator": "alice",
        "participant_type": ParticipantType.PERSON,
        "participants": ("bob",),
        "created_at": NOW - timedelta(hours=3),
        "updated_at": NOW - timedelta(hours=3),
        "fields": {"days": 3, "reason": "回老家\n探亲", "handler": "carol", "kind": "annual"},
        "relation": frozenset({"alice", "bob"}),
        "state_entered_at": NOW - timedelta(hours=3),
        "version": 4,
    }
    base.update(kw)
    return Ticket(**base)


def assert_snapshot(name: str, data: Any) -> None:
    path = SNAPSHOTS / f"{name}.json"
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no snapshot {path.name}: run with UPDATE_SNAPSHOTS=1 and review it"
    assert path.read_text(encoding="utf-8") == text


# --- builders ------------------------------------------------------------------------------------------


def test_pending_card_for_an_approver() -> None:
    wf, t = workflow(), make_ticket()
    actions = allowed_actions(t, wf, ORG, "bob")
    card = pending_card(t, wf, ORG, "bob", actions, link_url=LINK, now=NOW)
    assert card.kind == CardKind.PENDING
    assert card.title == "请假: 年假三天"
    assert card.subtitle == "待你处理 · 已等待3小时"
    assert card.rows == (
        Row("天数", "3"),
        Row("原因", "回老家 探亲"),
        Row("处理人", "卡罗尔"),
        Row("类型", "年假"),
        Row("申请人", "爱丽丝"),
        Row("当前状态", "领导审批"),
    )
    assert [(b.label, b.style) for b in card.buttons] == [
        ("同意", ButtonStyle.PRIMARY),
        ("拒绝", ButtonStyle.DANGER),
    ]
    assert [decode_action(b.action_key) for b in card.buttons] == [
        ButtonAction(7, TL, ActionKind.TRANSITION, APPROVE, "4"),
        ButtonAction(7, TL, ActionKind.TRANSITION, REJECT, "4"),
    ]
    assert (card.ticket_id, card.state_id, card.version, card.link_url) == (7, TL, 4, LINK)
    assert card.result_text == ""


def test_only_one_click_decisions_become_buttons() -> None:
    actions = (
        Action(ActionKind.TRANSITION, 20, "同意", int(Attribute.AGREE)),
        Action(ActionKind.DELIVER, name="转交"),
        Action(ActionKind.ADD_NODE, name="加签"),
        Action(ActionKind.TRANSITION, 22, "转法务", int(Attribute.OTHER)),
        Action(ActionKind.COMMENT, name="评论"),
        Action(ActionKind.CLOSE, name="关闭"),
        Action(ActionKind.DELETE, name="删除"),
    )
    card = pending_card(make_ticket(), workflow(), ORG, "bob", actions, link_url=LINK, now=NOW, nonce="n1")
    assert [(b.label, b.style) for b in card.buttons] == [
        ("同意", ButtonStyle.PRIMARY),
        ("转法务", ButtonStyle.DEFAULT),
    ]
    assert card.buttons[1].action_key == "t:7:s:2:a:transition:x:22:n:n1"


def test_accept_first_state_offers_accept() -> None:
    wf = workflow()
    t = make_ticket(
        state_id=OPS,
        participant_type=ParticipantType.ROLE,
        participants=("erin", "frank", "gina"),
        relation=frozenset({"alice", "bob", "erin", "frank", "gina"}),
    )
    card = pending_card(t, wf, ORG, "frank", allowed_actions(t, wf, ORG, "frank"), link_url=LINK, now=NOW)
    assert [(b.label, b.style) for b in card.buttons] == [("接单", ButtonStyle.PRIMARY)]
    assert decode_action(card.buttons[0].action_key) == ButtonAction(7, OPS, ActionKind.ACCEPT, 0, "4")
    assert card.subtitle.startswith("待你接单")


def test_add_node_target_gets_done() -> None:
    wf = workflow()
    t = make_ticket(
        in_add_node=True,
        add_node_man="bob",
        add_node_target="carol",
        relation=frozenset({"alice", "bob", "carol"}),
    )
    card = pending_card(t, wf, ORG, "carol", allowed_actions(t, wf, ORG, "carol"), link_url=LINK, now=NOW)
    assert [(b.label, b.style) for b in card.buttons] == [("完成", ButtonStyle.PRIMARY)]
    assert card.subtitle == "鲍勃 请你加签 · 已等待3小时"


def test_more_than_six_buttons_keeps_the_first_five() -> None:
    wf = workflow()
    extra = tuple(Transition(100 + i, f"选项{i}", TL, OPS, attribute=Attribute.OTHER) for i in range(5))
    wf = replace(wf, transitions=wf.transitions + extra)
    t = make_ticket()
    actions = allowed_actions(t, wf, ORG, "bob")
    assert sum(a.kind == ActionKind.TRANSITION for a in actions) == 7
    card = pending_card(t, wf, ORG, "bob", actions, link_url=LINK, now=NOW)
    assert [b.label for b in card.buttons] == ["同意", "拒绝", "选项0", "选项1", "选项2"]
    six = replace(wf, transitions=wf.transitions[:-1])
    card6 = pending_card(t, six, ORG, "bob", allowed_actions(t, six, ORG, "bob"), link_url=LINK, now=NOW)
    assert len(card6.buttons) == 6


def test_display_fields_choose_and_order_the_rows() -> None:
    wf = replace(workflow(), display_fields=("kind", "missing", "sn", "reason", "days", "handler"))
    t = make_ticket(fields={"kind": "sick", "days": 2})
    assert key_rows(t, wf, ORG) == (
        Row("类型", "病假"),
        Row("工单号", "loonflow_202601050001"),
        Row("原因", "—"),
        Row("天数", "2"),
    )


def test_without_display_fields_the_first_four_fields_with_values() -> None:
    fields = (
        CustomField("a", "甲", FieldType.STRING),
        CustomField("b", "乙", FieldType.INT),
        CustomField("c", "丙", FieldType.STRING),
        CustomField("d", "丁", FieldType.STRING),
        CustomField("e", "戊", FieldType.STRING),
        CustomField("f", "己", FieldType.STRING),
    )
    wf = replace(workflow(), fields=fields)
    t = make_ticket(fields={"a": "x", "b": 0, "c": "", "d": "y", "e": "z", "f": "w"})
    assert key_rows(t, wf, ORG) == (Row("甲", "x"), Row("乙", "0"), Row("丁", "y"), Row("戊", "z"))


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        (CustomField("ok", "同意", FieldType.BOOL, boolean_display={"1": "是的", "0": "不"}), True, "是的"),
        (CustomField("ok", "同意", FieldType.BOOL, boolean_display={"1": "是的", "0": "不"}), False, "不"),
        (CustomField("ok", "同意", FieldType.BOOL), True, "是"),
        (CustomField("ok", "同意", FieldType.BOOL), "0", "否"),
        (CustomField("k", "类型", FieldType.RADIO, choices={"a": "甲"}), "a", "甲"),
        (CustomField("k", "类型", FieldType.RADIO, choices={"a": "甲"}), "zz", "zz"),
        (
            CustomField("k", "多选", FieldType.MULTI_SELECT, choices={"a": "甲", "b": "乙"}),
            ["b", "a"],
            "乙、甲",
        ),
        (CustomField("k", "多选", FieldType.CHECKBOX, choices={"a": "甲", "b": "乙"}), "a,b", "甲、乙"),
        (CustomField("u", "人", FieldType.USER), "bob", "鲍勃"),
        (CustomField("u", "人", FieldType.USER), "nobody", "nobody"),
        (CustomField("u", "人们", FieldType.MULTI_USER), ["alice", "erin"], "爱丽丝、艾琳"),
        (CustomField("n", "数", FieldType.FLOAT), 2.0, "2"),
        (CustomField("n", "数", FieldType.FLOAT), 2.5, "2.5"),
        (CustomField("f", "附件", FieldType.ATTACHMENT), ["https://x/a/b.pdf", "c.png"], "b.pdf、c.png"),
        (CustomField("r", "富文本", FieldType.RICH_TEXT), "<p>你好</p><p>世界</p>", "你好 世界"),
        (CustomField("d", "日期", FieldType.DATE), "2026-01-05", "2026-01-05"),
        (CustomField("s", "文本", FieldType.STRING), None, ""),
        (CustomField("s", "文本", FieldType.MULTI_USER), [], ""),
    ],
)
def test_values_are_rendered_for_people(field: CustomField, value: Any, shown: str) -> None:
    assert display_value(field, value, ORG) == shown


def test_urge_card_has_the_pending_buttons() -> None:
    wf, t = workflow(), make_ticket()
    actions = allowed_actions(t, wf, ORG, "bob")
    urge = urge_card(t, wf, ORG, "bob", actions, urger="alice", link_url=LINK, now=NOW)
    pending = pending_card(t, wf, ORG, "bob", actions, link_url=LINK, now=NOW)
    assert urge.kind == CardKind.URGE
    assert urge.subtitle == "爱丽丝 催办了此工单"
    assert urge.buttons == pending.buttons
    assert urge.rows == pending.rows


def test_cc_card_is_read_only_with_a_link() -> None:
    card = cc_card(make_ticket(), workflow(), ORG, link_url=LINK)
    assert card.kind == CardKind.CC
    assert card.buttons == ()
    assert card.link_url == LINK
    assert card.subtitle == "爱丽丝 的工单抄送给你，仅供知悉"


def _approved_log(at: datetime = NOW) -> FlowLog:
    return FlowLog(
        ticket_id=7,
        state_id=TL,
        actor="bob",
        actor_type=ParticipantType.PERSON,
        intervene_type=InterveneType.TRANSITION,
        created_at=at,
        transition_id=APPROVE,
        transition_name="同意",
        attribute=int(Attribute.AGREE),
    )


def test_result_card_after_a_decision() -> None:
    t = make_ticket(
        state_id=OPS,
        participant_type=ParticipantType.ROLE,
        participants=("erin", "frank", "gina"),
        version=5,
    )
    card = result_card(t, workflow(), ORG, _approved_log(), link_url=LINK, now=NOW)
    assert card.kind == CardKind.RESULT
    assert card.buttons == ()
    assert card.result_text == "已同意 · 鲍勃 · 01-05 17:00"  # 09:00 UTC is 17:00 in China
    assert card.subtitle == "当前处理人: 艾琳、弗兰克、吉娜"
    assert card.rows[-1] == Row("当前状态", "运维处理")


@pytest.mark.parametrize(
    ("log", "text"),
    [
        (_approved_log(datetime(2025, 11, 21, 6, 5, tzinfo=UTC)), "已同意 · 鲍勃 · 2025-11-21 14:05"),
        (
            replace(_approved_log(), transition_name="", attribute=int(Attribute.REJECT)),
            "已拒绝 · 鲍勃 · 01-05 17:00",
        ),
        (replace(_approved_log(), transition_name="退回"), "已退回 · 鲍勃 · 01-05 17:00"),
        (replace(_approved_log(), intervene_type=InterveneType.ACCEPT), "已接单 · 鲍勃 · 01-05 17:00"),
        (
            replace(_approved_log(), actor="system", intervene_type=InterveneType.HOOK),
            "已自动处理 · 系统 · 01-05 17:00",
        ),
        (replace(_approved_log(), created_at=NOW.replace(tzinfo=None)), "已同意 · 鲍勃 · 01-05 17:00"),
    ],
)
def test_result_text(log: FlowLog, text: str) -> None:
    assert result_text(make_ticket(), ORG, log, now=NOW, tz=CHINA_TZ) == text


def test_result_text_without_a_log_says_the_state() -> None:
    assert result_text(make_ticket(act_state=ActState.FINISHED), ORG, None, now=NOW) == "已完成"
    assert result_text(make_ticket(is_deleted=True), ORG, None, now=NOW) == "已删除"
    ended = result_card(make_ticket(act_state=ActState.CLOSED), workflow(), ORG, None, link_url=LINK, now=NOW)
    assert (ended.subtitle, ended.result_text) == ("工单已结束", "已关闭")


# --- payload codec -------------------------------------------------------------------------------------


def test_payload_format_and_round_trip() -> None:
    key = encode_action(123, 102, ActionKind.TRANSITION, 152, "ab12")
    assert key == "t:123:s:102:a:transition:x:152:n:ab12"
    assert decode_action(key) == ButtonAction(123, 102, ActionKind.TRANSITION, 152, "ab12")
    assert decode_action(key).encode() == key  # type: ignore[union-attr]
    assert encode_action(1, 2, "accept", 0, "x") == "t:1:s:2:a:accept:x:0:n:x"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "t:123:s:102:a:transition:x:152",
        "t:123:s:102:a:transition:x:152:n:",
        "t:123:s:102:a:transition:x:152:n:ab12:",
        "t:123:s:102:a:transition:x:152:n:ab12\n",
        " t:123:s:102:a:transition:x:152:n:ab12",
        "t:0123:s:102:a:transition:x:152:n:ab12",
        "t:0:s:102:a:transition:x:152:n:ab12",
        "t:123:s:0:a:transition:x:152:n:ab12",
        "t:-1:s:102:a:transition:x:152:n:ab12",
        "t:123:s:102:a:transition:x:0:n:ab12",
        "t:123:s:102:a:accept:x:5:n:ab12",
        "t:123:s:102:a:approve:x:152:n:ab12",
        "t:123:s:102:a:TRANSITION:x:152:n:ab12",
        "t:123:s:102:a:transition:x:152:n:a b",
        "t:123:s:102:a:transition:x:152:n:" + "a" * 33,
        "t:99999999999999999999:s:102:a:transition:x:152:n:ab12",
        "t:9223372036854775808:s:102:a:transition:x:152:n:ab12",
        "t:١٢٣:s:102:a:transition:x:152:n:ab12",
        "T:123:S:102:A:transition:X:152:N:ab12",
        "x" * 5000,
    ],
)
def test_malformed_keys_decode_to_none(key: str) -> None:
    assert decode_action(key) is None


@pytest.mark.parametrize("value", [None, 123, b"t:1:s:2:a:accept:x:0:n:x", ["t"], object()])
def test_non_strings_decode_to_none(value: object) -> None:
    assert decode_action(value) is None


@pytest.mark.parametrize(
    "args",
    [
        (0, 1, ActionKind.ACCEPT, 0, "n"),
        (1, 0, ActionKind.ACCEPT, 0, "n"),
        (1, 1, ActionKind.TRANSITION, 0, "n"),
        (1, 1, ActionKind.ACCEPT, 3, "n"),
        (1, 1, ActionKind.ACCEPT, 0, ""),
        (1, 1, ActionKind.ACCEPT, 0, "n:1"),
        (1, 1, "nope", 0, "n"),
        (2**63, 1, ActionKind.ACCEPT, 0, "n"),
        (True, 1, ActionKind.ACCEPT, 0, "n"),
    ],
)
def test_encode_refuses_bad_input(args: tuple[Any, ...]) -> None:
    with pytest.raises(CardError):
        encode_action(*args)


ids = st.integers(min_value=1, max_value=2**63 - 1)
nonces = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=32
)


@st.composite
def button_actions(draw: st.DrawFn) -> ButtonAction:
    kind = draw(st.sampled_from(list(ActionKind)))
    transition = draw(ids) if kind == ActionKind.TRANSITION else 0
    return ButtonAction(draw(ids), draw(ids), kind, transition, draw(nonces))


@given(button_actions())
def test_round_trip_property(action: ButtonAction) -> None:
    key = action.encode()
    assert len(key.encode()) <= 1024
    assert re.fullmatch(r"[A-Za-z0-9:_-]+", key)
    assert decode_action(key) == action


@given(st.one_of(st.text(max_size=300), st.binary(max_size=100).map(lambda b: b.decode("latin-1"))))
def test_decode_never_raises_on_arbitrary_text(text: str) -> None:
    decoded = decode_action(text)
    assert decoded is None or decoded.encode() == text  # only canonical keys decode


@given(button_actions(), st.integers(min_value=0, max_value=200), st.text(max_size=3))
def test_decode_never_raises_on_mutated_keys(action: ButtonAction, at: int, insert: str) -> None:
    key = action.encode()
    at = min(at, len(key))
    for mutated in (key[:at] + insert + key[at:], key[:at] + key[at + 1 :], key[:at]):
        decoded = decode_action(mutated)
        assert decoded is None or decoded.encode() == mutated


# --- WeCom renderer: snapshots -------------------------------------------------------------------------


def _pending() -> Card:
    wf, t = workflow(), make_ticket()
    return pending_card(t, wf, ORG, "bob", allowed_actions(t, wf, ORG, "bob"), link_url=LINK, now=NOW)


def _result() -> Card:
    t = make_ticket(
        state_id=OPS, participant_type=ParticipantType.ROLE, participants=("erin", "frank", "gina")
    )
    return result_card(t, workflow(), ORG, _approved_log(), link_url=LINK, now=NOW)


def test_snapshot_pending_button_interaction() -> None:
    assert_snapshot(
        "wecom_pending", render_wecom(_pending(), task_id=task_id_for(7, "bob", 1), agent_id=AGENT)
    )


def test_snapshot_urge() -> None:
    wf, t = workflow(), make_ticket()
    card = urge_card(
        t, wf, ORG, "bob", allowed_actions(t, wf, ORG, "bob"), urger="alice", link_url=LINK, now=NOW
    )
    assert_snapshot("wecom_urge", render_wecom(card, task_id=task_id_for(7, "bob", 2), agent_id=AGENT))


def test_snapshot_cc_text_notice() -> None:
    card = cc_card(make_ticket(), workflow(), ORG, link_url=LINK)
    assert_snapshot("wecom_cc", render_wecom(card, task_id=task_id_for(7, "viewer", 1), agent_id=AGENT))


def test_snapshot_result_text_notice() -> None:
    assert_snapshot("wecom_result", render_wecom(_result(), task_id=task_id_for(7, "bob", 3), agent_id=AGENT))


def test_snapshot_update_replace_name_when_only_the_decision_changed() -> None:
    before = _pending()
    after = replace(before, kind=CardKind.RESULT, buttons=(), result_text="已同意 · 鲍勃 · 01-05 17:00")
    body = render_wecom_update(after, task_id=task_id_for(7, "bob", 1), agent_id=AGENT, previous=before)
    assert body == {"agentid": AGENT, "button": {"replace_name": "已同意 · 鲍勃 · 01-05 17:00"}}
    assert_snapshot("wecom_update_replace_name", body)


def test_snapshot_update_whole_card_when_the_content_changed() -> None:
    body = render_wecom_update(
        _result(), task_id=task_id_for(7, "bob", 1), agent_id=AGENT, previous=_pending()
    )
    tc = body["template_card"]
    assert tc["card_type"] == "button_interaction"
    assert tc["replace_text"] == "已同意 · 鲍勃 · 01-05 17:00"
    assert tc["task_id"] == task_id_for(7, "bob", 1)
    assert decode_action(tc["button_list"][0]["key"]) is None  # the placeholder is no action
    assert render_wecom_update(_result(), task_id=task_id_for(7, "bob", 1), agent_id=AGENT) == body
    assert_snapshot("wecom_update_template_card", body)


def test_snapshot_limits_are_enforced() -> None:
    key = encode_action(7, TL, ActionKind.TRANSITION, 1, "z")
    card = Card(
        kind=CardKind.PENDING,
        title="一个非常长的工作流名称用来测试标题的截断是否正确: 还有一个更长的工单标题",
        subtitle="第一行\n第二行\t\x00第三行",
        rows=tuple(Row(f"很长很长的字段名称第{i}个超过十六个字", "值" * 200) for i in range(8)),
        buttons=(
            Button("同意并转交给下一位处理人", key, ButtonStyle.PRIMARY),
            Button("重复", key, ButtonStyle.DANGER),
            Button("太长", "k" * 1025),
            Button("", encode_action(7, TL, ActionKind.TRANSITION, 2, "z"), ButtonStyle.DANGER),
            *(Button(f"b{i}", encode_action(7, TL, ActionKind.TRANSITION, 10 + i, "z")) for i in range(8)),
        ),
        link_url=LINK,
        source="一个名字很长很长的工单应用",
        ticket_id=7,
        state_id=TL,
    )
    body = render_wecom(card, task_id="tb_7_1_ubob", agent_id=AGENT)
    assert_within_wecom_limits(body)
    assert_snapshot("wecom_limits", body)


def test_info_card_renders_as_text_notice() -> None:
    card = info_card("工单已创建", "你的请假申请已提交", link_url=LINK, ticket_id=7)
    tc = render_wecom(card, task_id="tb_7_0_ualice", agent_id=AGENT)["template_card"]
    assert tc["card_type"] == "text_notice"
    assert tc["card_action"] == {"type": 1, "url": LINK}


def test_text_notice_without_a_link_is_refused() -> None:
    with pytest.raises(CardError, match="card_action"):
        render_wecom(Card(CardKind.CC, "x"), task_id="t1", agent_id=AGENT)


@pytest.mark.parametrize("task_id", ["", "a b", "a.b", "中文", "a" * 129, "a:b"])
def test_bad_task_ids_are_refused(task_id: str) -> None:
    with pytest.raises(CardError):
        render_wecom(_pending(), task_id=task_id, agent_id=AGENT)


def test_clean_truncates_with_an_ellipsis() -> None:
    assert clean("a" * TITLE_MAX, TITLE_MAX) == "a" * TITLE_MAX
    assert clean("a" * (TITLE_MAX + 1), TITLE_MAX) == "a" * (TITLE_MAX - 1) + "…"
    assert clean(" x \n\n y ", 10) == "x y"


# --- WeCom renderer: limits, property-tested ---------------------------------------------------------

TASK_ID_RE = re.compile(r"[A-Za-z0-9_\-@]{1,128}")
TEXT_LIMITS = {"title": 36, "desc": 44, "sub_title_text": 112, "text": 10, "replace_text": 36}


def assert_within_wecom_limits(body: dict[str, Any]) -> None:
    json.dumps(body, ensure_ascii=False).encode("utf-8")
    tc = body["template_card"]
    assert tc["card_type"] in ("button_interaction", "text_notice")
    assert TASK_ID_RE.fullmatch(tc["task_id"]) and len(tc["task_id"].encode()) <= 128
    assert 0 < len(tc["main_title"]["title"]) <= TEXT_LIMITS["title"]
    assert len(tc["main_title"].get("desc", "")) <= TEXT_LIMITS["desc"]
    assert len(tc.get("sub_title_text", "")) <= TEXT_LIMITS["sub_title_text"]
    assert len(tc.get("source", {}).get("desc", "")) <= 13
    rows = tc.get("horizontal_content_list", [])
    assert len(rows) <= 6
    for row in rows:
        assert 0 < len(row["keyname"]) <= ROW_KEY_MAX
        assert 0 < len(row["value"]) <= ROW_VALUE_MAX
    if tc["card_type"] == "text_notice":
        assert "button_list" not in tc
        assert tc["card_action"]["type"] == 1 and tc["card_action"]["url"]
    else:
        buttons = tc["button_list"]
        assert 1 <= len(buttons) <= 6
        keys = [b["key"] for b in buttons]
        assert len(set(keys)) == len(keys)
        for b in buttons:
            assert 0 < len(b["key"].encode("utf-8")) <= 1024
            assert b["style"] in (1, 2, 3, 4)
            assert 0 < len(b["text"]) <= TEXT_LIMITS["text"]
    for value in json.loads(json.dumps(tc)).values():
        if isinstance(value, str):
            assert "\n" not in value


texts = st.text(max_size=300)
keys = st.one_of(
    button_actions().map(ButtonAction.encode),
    st.text(max_size=40),
    st.text(min_size=1000, max_size=1100),
    st.sampled_from(["dup", "dup", "同意"]),
)
cards = st.builds(
    Card,
    kind=st.sampled_from(list(CardKind)),
    title=texts,
    subtitle=texts,
    rows=st.lists(st.builds(Row, key=texts, value=texts), max_size=10).map(tuple),
    buttons=st.lists(
        st.builds(Button, label=texts, action_key=keys, style=st.sampled_from(list(ButtonStyle))), max_size=10
    ).map(tuple),
    link_url=st.text(max_size=50).map(lambda s: "https://x.example/" + s),
    source=texts,
    result_text=texts,
    ticket_id=st.integers(min_value=0, max_value=2**63 - 1),
)


@settings(deadline=None)
@given(cards, st.integers(min_value=0, max_value=2**63 - 1), st.text(max_size=200), st.integers(0, 2**63 - 1))
def test_any_card_renders_within_wecom_limits(card: Card, ticket_id: int, recipient: str, seq: int) -> None:
    task_id = task_id_for(ticket_id, recipient, seq)
    assert_within_wecom_limits(render_wecom(card, task_id=task_id, agent_id=AGENT))
    update = render_wecom_update(card, task_id=task_id, agent_id=AGENT)
    assert_within_wecom_limits(update)
    assert len(update["template_card"].get("replace_text", "")) <= TEXT_LIMITS["replace_text"]
    cheap = render_wecom_update(replace(card, buttons=()), task_id=task_id, agent_id=AGENT, previous=card)
    assert 0 < len(cheap["button"]["replace_name"]) <= TEXT_LIMITS["replace_text"]


@given(st.integers(0, 2**63 - 1), st.text(max_size=200), st.text(max_size=200), st.integers(0, 2**63 - 1))
def test_task_ids_are_valid_and_distinct_per_recipient(ticket_id: int, a: str, b: str, seq: int) -> None:
    ta, tb = task_id_for(ticket_id, a, seq), task_id_for(ticket_id, b, seq)
    assert TASK_ID_RE.fullmatch(ta) and len(ta.encode()) <= 128
    assert (ta == tb) == (a == b)
    assert task_id_for(ticket_id, a, seq // 2) != ta or seq == 0


def test_task_id_examples() -> None:
    assert task_id_for(7, "bob", 1) == "tb_7_1_ubob"
    assert task_id_for(7, "a.b@c", 2) == "tb_7_2_ua@2Eb@40c"
    assert task_id_for(7, "x" * 200, 0).startswith("tb_7_0_h")
