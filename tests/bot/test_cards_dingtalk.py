"""Pure tests of the DingTalk card renderer (template variables, text and oa fallbacks) and of the
card template shipped for DingTalk's card platform (config/dingtalk/card_template.json).

Renders are compared with JSON snapshots in tests/bot/snapshots/dingtalk_*.json, and the shipped
template with what `build_template()` below makes; run with UPDATE_SNAPSHOTS=1 to rewrite both
(then review the diff).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cards import dingtalk as dt
from bot.cards.build import cc_card, info_card, pending_card, result_card, urge_card
from bot.cards.dingtalk import (
    MAX_BUTTONS,
    VARIABLES,
    DingTalkCard,
    button_variables,
    callback_action,
    link_url,
    oa_size,
    render_dingtalk,
    render_dingtalk_oa,
    render_dingtalk_text,
    render_dingtalk_update,
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
from core.access import ActionKind, allowed_actions
from core.ticket import FlowLog, InterveneType
from core.workflow import Attribute, ParticipantType
from tests.bot.test_cards import LINK, assert_snapshot, button_actions, make_ticket
from tests.core.builders import APPROVE, NOW, OPS, ORG, REJECT, TL, workflow

TEMPLATE = Path(__file__).parents[2] / "config" / "dingtalk" / "card_template.json"


def _approved_log() -> FlowLog:
    return FlowLog(
        ticket_id=7,
        state_id=TL,
        actor="bob",
        actor_type=ParticipantType.PERSON,
        intervene_type=InterveneType.TRANSITION,
        created_at=NOW,
        transition_id=APPROVE,
        transition_name="同意",
        attribute=int(Attribute.AGREE),
    )


def _pending() -> Card:
    wf, t = workflow(), make_ticket()
    return pending_card(t, wf, ORG, "bob", allowed_actions(t, wf, ORG, "bob"), link_url=LINK, now=NOW)


def _urge() -> Card:
    wf, t = workflow(), make_ticket()
    actions = allowed_actions(t, wf, ORG, "bob")
    return urge_card(t, wf, ORG, "bob", actions, urger="alice", link_url=LINK, now=NOW)


def _cc() -> Card:
    return cc_card(make_ticket(), workflow(), ORG, link_url=LINK)


def _result() -> Card:
    t = make_ticket(
        state_id=OPS, participant_type=ParticipantType.ROLE, participants=("erin", "frank", "gina")
    )
    return result_card(t, workflow(), ORG, _approved_log(), link_url=LINK, now=NOW)


def _info() -> Card:
    return info_card(
        "工单已创建", "你的请假申请已提交", link_url=LINK, rows=(Row("工单号", "7"),), ticket_id=7
    )


def _dirty() -> Card:
    key = encode_action(7, TL, ActionKind.TRANSITION, 1, "z")
    return Card(
        kind=CardKind.PENDING,
        title="一个非常长的工作流名称用来测试标题的截断是否正确: 还有一个更长的工单标题，再长一点，再长一点，还要更长，一直长到超过六十个字符为止才停下来",
        subtitle="第一行\n第二行\t\x00第三行\u200b\u2028",
        rows=(
            *(Row(f"很长很长的字段名称第{i}个超过二十个字的那种字段名", "值" * 300) for i in range(3)),
            Row(" \n ", "a key that cleans to nothing drops the row"),
            Row("空值", " \t "),
            *(Row(f"k{i}", f"v{i}") for i in range(5)),
        ),
        buttons=(
            Button("同意并转交给下一位处理人审批", key, ButtonStyle.PRIMARY),
            Button("重复", key, ButtonStyle.DANGER),
            Button("太长", "k" * 1025),
            Button("不是动作", "t:7:s:2:a:transition:x:0:n:z"),
            Button("", encode_action(7, TL, ActionKind.TRANSITION, 2, "z"), ButtonStyle.DANGER),
            *(Button(f"b{i}", encode_action(7, TL, ActionKind.TRANSITION, 10 + i, "z")) for i in range(8)),
        ),
        link_url=f"  {LINK}  ",
        source="一个名字很长很长很长很长的工单应用名称",
        ticket_id=7,
        state_id=TL,
    )


def _renders(card: Card) -> dict[str, Any]:
    out: dict[str, Any] = {
        "card": render_dingtalk(card).param_map,
        "update": render_dingtalk_update(card).param_map,
        "text": render_dingtalk_text(card).split("\n"),
    }
    out["oa"] = render_dingtalk_oa(card)
    return out


# --- snapshots -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("dingtalk_pending", _pending),
        ("dingtalk_urge", _urge),
        ("dingtalk_cc", _cc),
        ("dingtalk_result", _result),
        ("dingtalk_info", _info),
        ("dingtalk_limits", _dirty),
    ],
)
def test_snapshots(name: str, make: Any) -> None:
    assert_snapshot(name, _renders(make()))


def test_pending_card_variables() -> None:
    params = render_dingtalk(_pending()).param_map
    assert list(params) == list(VARIABLES)
    assert params["status"] == "pending"
    assert json.loads(params["rows"])[0] == {"key": "天数", "value": "3"}
    assert [params[f"btn{n}_text"] for n in range(1, 4)] == ["同意", "拒绝", ""]
    assert [params[f"btn{n}_style"] for n in range(1, 4)] == ["primary", "danger", ""]
    assert decode_action(params["btn1_action"]) == ButtonAction(7, TL, ActionKind.TRANSITION, APPROVE, "4")
    assert decode_action(params["btn2_action"]) == ButtonAction(7, TL, ActionKind.TRANSITION, REJECT, "4")
    assert params["btn3_action"] == ""
    assert params["result_text"] == ""


def test_an_update_replaces_every_variable_and_shows_the_result() -> None:
    before = render_dingtalk(_pending()).param_map
    after = render_dingtalk_update(_result()).param_map
    assert list(after) == list(before)
    assert after["status"] == "done"
    assert after["result_text"] == "已同意 · 鲍勃 · 01-05 17:00"
    assert all(after[name] == "" for n in range(1, MAX_BUTTONS + 1) for name in button_variables(n))
    # without a result text, an updated card without buttons still says it was handled
    assert render_dingtalk_update(replace(_pending(), buttons=())).param_map["result_text"] == "已处理"
    assert render_dingtalk(replace(_pending(), buttons=())).param_map["result_text"] == ""
    # an update that still has buttons keeps them (e.g. a new state for the same handler)
    assert render_dingtalk_update(_pending()).param_map == before


def test_limits_are_enforced() -> None:
    params = render_dingtalk(_dirty()).param_map
    assert_within_limits(params)
    assert params["subtitle"] == "第一行 第二行 第三行"
    assert params["title"].endswith("…") and len(params["title"]) == dt.TITLE_MAX
    rows = json.loads(params["rows"])
    assert len(rows) == 6
    assert rows[3] == {"key": "空值", "value": "—"}
    assert [params[f"btn{n}_text"] for n in range(1, 7)] == [
        "同意并转交给下一位处理…",
        "操作",
        "b0",
        "b1",
        "b2",
        "b3",
    ]
    assert params["link_url"] == LINK


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        (LINK, True),
        ("http://10.0.0.1:8080/t/7?x=1&y=2", True),
        ("dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fx.example", True),
        ("HTTPS://X.EXAMPLE/工单/7", True),
        ("", False),
        ("javascript:alert(1)", False),
        ("ftp://x.example/f", False),
        ("https://x.example/a b", False),
        ("https://x.example/a\x00b", False),
        ("https://", False),
        ("https://x.example/" + "a" * 2048, False),
    ],
)
def test_link_urls(url: str, kept: bool) -> None:
    assert link_url(url) == (url if kept else "")
    params = render_dingtalk(replace(_pending(), link_url=url)).param_map
    assert params["link_url"] == (url if kept else "")


def test_card_data_and_private_data() -> None:
    card = render_dingtalk(_pending())
    assert card.card_data() == {"cardParamMap": card.param_map}
    assert card.private_data("staff1") == {"staff1": {"cardParamMap": card.param_map}}
    card.card_data()["cardParamMap"]["title"] = "changed"
    assert card.param_map["title"] == "请假: 年假三天"


# --- click callbacks -----------------------------------------------------------------------------------


def _content(action: str, action_id: str = "btn1") -> str:
    return json.dumps({"cardPrivateData": {"actionIds": [action_id], "params": {"action": action}}})


def test_callback_brings_back_the_action_key() -> None:
    params = render_dingtalk(_pending()).param_map
    content = _content(params["btn2_action"], "btn2")
    assert callback_action(content) == ButtonAction(7, TL, ActionKind.TRANSITION, REJECT, "4")
    assert callback_action(json.loads(content)) == callback_action(content)
    assert callback_action(content.encode()) == callback_action(content)


@pytest.mark.parametrize(
    "content",
    [
        None,
        "",
        "not json",
        "[]",
        "{}",
        '{"cardPrivateData": []}',
        '{"cardPrivateData": {"params": "x"}}',
        '{"cardPrivateData": {"params": {}}}',
        '{"cardPrivateData": {"params": {"action": 7}}}',
        '{"cardPrivateData": {"params": {"action": "t:7:s:2:a:transition:x:0:n:z"}}}',
        '{"params": {"action": "t:7:s:2:a:accept:x:0:n:z"}}',
        "[" * 100_000,
        b"\xff\xfe",
        7,
    ],
)
def test_bad_callbacks_decode_to_none(content: object) -> None:
    assert callback_action(content) is None


def _json_children(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)


@given(st.one_of(st.text(), st.binary(), st.recursive(st.none() | st.text() | st.integers(), _json_children)))
def test_callback_action_never_raises(content: object) -> None:
    callback_action(content)
    callback_action(json.dumps({"cardPrivateData": {"params": {"action": content}}}, default=str))


# --- fallbacks -----------------------------------------------------------------------------------------


def test_text_fallback() -> None:
    assert render_dingtalk_text(_pending()) == "\n".join(
        [
            "【工单助手】请假: 年假三天",
            "待你处理 · 已等待3小时",
            "天数: 3",
            "原因: 回老家 探亲",
            "处理人: 卡罗尔",
            "类型: 年假",
            "申请人: 爱丽丝",
            "当前状态: 领导审批",
            "可处理: 同意、拒绝（请打开详情页操作）",
            f"查看详情: {LINK}",
        ]
    )
    text = render_dingtalk_text(_result())
    assert "已同意 · 鲍勃 · 01-05 17:00" in text.split("\n")
    assert "可处理" not in text
    assert render_dingtalk_text(replace(_cc(), link_url="")).split("\n")[-1] == "当前状态: 领导审批"


def test_text_fallback_is_cut_but_keeps_the_link() -> None:
    card = replace(_pending(), rows=tuple(Row(f"字段{i}", "很长的值" * 100) for i in range(6)))
    text = render_dingtalk_text(card)
    assert len(text) <= dt.TEXT_MAX
    assert text.endswith(f"\n查看详情: {LINK}")
    assert "…\n查看详情" in text


def test_text_fallback_keeps_a_very_long_link_whole() -> None:
    url = "https://x.example/" + "a" * 1500
    text = render_dingtalk_text(replace(_dirty(), link_url=url))
    body, tail = text.rsplit("\n", 1)
    assert tail == f"查看详情: {url}"
    assert len(body) == dt.TEXT_MIN_BODY and body.endswith("…")


def test_oa_fallback() -> None:
    oa = render_dingtalk_oa(_pending())
    assert oa["message_url"] == LINK
    assert oa["head"] == {"bgcolor": "FF3296FA", "text": "工单助手"}
    assert oa["body"]["title"] == "请假: 年假三天"
    assert oa["body"]["form"][0] == {"key": "天数:", "value": "3"}
    assert len(oa["body"]["form"]) == 6
    assert oa["body"]["content"] == "待你处理 · 已等待3小时 · 可处理: 同意、拒绝（请打开详情页操作）"
    assert oa["status_bar"] == {"status_value": "待处理", "status_bg": "0xFFFF9200"}
    assert render_dingtalk_oa(_result())["status_bar"]["status_value"] == "已同意 · 鲍勃 · 01-05 17:00"
    assert render_dingtalk_oa(_cc())["status_bar"]["status_value"] == "抄送"
    assert render_dingtalk_oa(_info())["status_bar"]["status_value"] == "通知"


def test_oa_needs_a_link() -> None:
    with pytest.raises(CardError, match="message_url"):
        render_dingtalk_oa(replace(_pending(), link_url="not a url"))


def test_oa_is_kept_within_2048_bytes() -> None:
    card = replace(_dirty(), rows=tuple(Row(f"很长的字段名{i}", "值" * 300) for i in range(6)))
    oa = render_dingtalk_oa(card)
    assert oa_size(oa) <= 2048
    assert all(len(f["value"]) <= 64 for f in oa["body"]["form"])
    long_link = "https://x.example/" + "a" * 2000
    with pytest.raises(CardError, match="2048"):
        render_dingtalk_oa(replace(card, link_url=long_link))


# --- property tests ------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
LIMITS = {
    "title": dt.TITLE_MAX,
    "subtitle": dt.SUBTITLE_MAX,
    "source": dt.SOURCE_MAX,
    "link_text": dt.LINK_TEXT_MAX,
    "result_text": dt.RESULT_MAX,
}


def assert_within_limits(params: dict[str, str]) -> None:
    assert list(params) == list(VARIABLES)
    assert all(isinstance(v, str) for v in params.values())
    json.dumps(params, ensure_ascii=False).encode("utf-8")
    for name, limit in LIMITS.items():
        assert len(params[name]) <= limit
        assert not _CONTROL.search(params[name])
    assert params["title"] and params["link_text"]
    rows = json.loads(params["rows"])
    assert isinstance(rows, list) and len(rows) <= 6
    for row in rows:
        assert set(row) == {"key", "value"}
        assert 0 < len(row["key"]) <= dt.ROW_KEY_MAX and 0 < len(row["value"]) <= dt.ROW_VALUE_MAX
        assert not _CONTROL.search(row["key"] + row["value"])
    assert params["link_url"] == "" or link_url(params["link_url"]) == params["link_url"]
    slots = [tuple(params[v] for v in button_variables(n)) for n in range(1, MAX_BUTTONS + 1)]
    used = [s for s in slots if s != ("", "", "")]
    assert slots[: len(used)] == used  # filled from slot 1, no gaps
    actions = [action for _, action, _ in used]
    assert len(set(actions)) == len(actions)
    for text, action, style in used:
        assert decode_action(action) is not None
        assert 0 < len(text) <= dt.BUTTON_TEXT_MAX and not _CONTROL.search(text)
        assert style in ("primary", "danger", "default")
    assert params["status"] == ("pending" if used else "done")


texts = st.text(max_size=300)
keys = st.one_of(
    button_actions().map(ButtonAction.encode),
    button_actions().map(ButtonAction.encode),
    st.text(max_size=40),
    st.sampled_from(["dup", "dup", "同意", "", "t:1:s:1:a:accept:x:0:n:a"]),
)
urls = st.one_of(
    st.text(max_size=60).map(lambda s: "https://x.example/" + s),
    st.sampled_from([LINK, "", "javascript:x", "dingtalk://dingtalkclient/page/link?url=x"]),
    st.text(max_size=60),
)
cards = st.builds(
    Card,
    kind=st.sampled_from(list(CardKind)),
    title=texts,
    subtitle=texts,
    rows=st.lists(st.builds(Row, key=texts, value=texts), max_size=10).map(tuple),
    buttons=st.lists(
        st.builds(Button, label=texts, action_key=keys, style=st.sampled_from(list(ButtonStyle))), max_size=12
    ).map(tuple),
    link_url=urls,
    link_text=st.one_of(st.just("查看详情"), texts),
    source=texts,
    result_text=texts,
    ticket_id=st.integers(min_value=0, max_value=2**63 - 1),
)


@settings(deadline=None)
@given(cards)
def test_any_card_renders_the_fixed_string_variables(card: Card) -> None:
    new, update = render_dingtalk(card), render_dingtalk_update(card)
    assert isinstance(new, DingTalkCard)
    assert_within_limits(new.param_map)
    assert_within_limits(update.param_map)
    assert set(new.param_map) == set(VARIABLES) == set(update.param_map)
    if update.param_map["status"] == "done":
        assert update.param_map["result_text"]
    for n in range(1, MAX_BUTTONS + 1):
        action = new.param_map[button_variables(n)[1]]
        if action:
            assert callback_action(_content(action, f"btn{n}")) == decode_action(action)


@settings(deadline=None)
@given(cards)
def test_any_card_renders_as_text_and_oa(card: Card) -> None:
    text = render_dingtalk_text(card)
    url = link_url(card.link_url)
    assert 0 < len(text) <= max(dt.TEXT_MAX, dt.TEXT_MIN_BODY + len(url) + 20)
    if url:
        assert text.endswith(url)
        oa = render_dingtalk_oa(card)
        assert oa_size(oa) <= dt.OA_MAX_BYTES
        assert oa["message_url"] == url
        assert len(oa["head"]["text"]) <= 10 and len(oa["body"]["title"]) <= 50
        assert len(oa["body"].get("form", [])) <= 6
        assert all(
            isinstance(f["key"], str) and isinstance(f["value"], str) for f in oa["body"].get("form", [])
        )
        assert oa["status_bar"]["status_value"]
    else:
        with pytest.raises(CardError):
            render_dingtalk_oa(card)


@given(st.lists(button_actions(), min_size=7, max_size=12, unique_by=ButtonAction.encode))
def test_more_than_six_valid_buttons_keep_the_first_six(actions: list[ButtonAction]) -> None:
    buttons = tuple(Button(f"b{i}", a.encode()) for i, a in enumerate(actions))
    params = render_dingtalk(Card(CardKind.PENDING, "t", buttons=buttons)).param_map
    assert [params[f"btn{n}_action"] for n in range(1, 7)] == [a.encode() for a in actions[:6]]
    assert [decode_action(params[f"btn{n}_action"]) for n in range(1, 7)] == actions[:6]


# --- the card template shipped for DingTalk's card platform -------------------------------------------
#
# Import format (not published by DingTalk; taken from exports of its card builder, see the README):
# {"editorData": "<JSON text>", "widgetInfo": "", "type": "im", "mode": "card"}, where editorData is
# {"schemaVersion": "3.0.0", "schema": {"componentsMap", "componentsTree", ...}, "variableList", ...}.

_COLORS = {"primary": "blue", "danger": "red", "default": "gray"}
_DESCRIPTIONS = {
    "title": "卡片标题",
    "subtitle": "标题下的一行说明（如：待你处理 · 已等待3小时）",
    "source": "标题上方的应用名",
    "rows": '字段列表（JSON 数组文本，每项 {"key","value"}），最多 6 行',
    "link_url": "“查看详情”打开的工单页面地址",
    "link_text": "链接文字，默认“查看详情”",
    "result_text": "处理结果（灰色显示，status 为 done 时）",
    "status": "pending：显示按钮区；done：显示处理结果",
}


def _string(content: str) -> dict[str, Any]:
    return {"type": "dynamicString", "content": content, "i18n": False}


def _fixed(kind: str, value: Any) -> dict[str, Any]:
    return {
        "type": "dynamic" + kind,
        "valueType": "fixed",
        "value": value,
        "variable": "",
        "variableType": "global",
    }


def _ref(name: str) -> dict[str, Any]:
    return {"type": "variableValue", "variableType": "global", "variable": name}


def _equal(name: str, value: str) -> dict[str, Any]:
    return {
        "type": "variable",
        "variable": name,
        "variableType": "global",
        "op": "equal",
        "value": value,
        "valueType": "fixed",
        "valueVariable": "",
        "valueVariableType": "global",
    }


def _visible(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "dynamicVisible",
        "value": True,
        "valueType": "condition" if conditions else "fixed",
        "condition": {"op": "and", "conditions": list(conditions)},
    }


def _node(
    component: str, key: str, title: str, props: dict[str, Any], children: list[Any] | None = None
) -> Any:
    node: dict[str, Any] = {
        "componentName": component,
        "id": "node_ticketbot_" + key,
        "props": props,
        "title": title,
        "hidden": False,
        "isLocked": False,
        "condition": True,
        "conditionGroup": "",
    }
    if children is not None:
        node["children"] = children
    return node


def _margins(left: int = 12, right: int = 12, top: int = 4, bottom: int = 4) -> dict[str, Any]:
    return {"marginLeft": left, "marginRight": right, "marginTop": top, "marginBottom": bottom}


def _text(
    key: str,
    title: str,
    content: str,
    size: int,
    color: str,
    *,
    bold: bool = False,
    lines: int = 2,
    **extra: Any,
) -> Any:
    props = {
        "text": _string(content),
        "fontColorType": "Custom",
        "customLightColor": _fixed("Color", color),
        "customDarkColor": _fixed("Color", "#E5E5E5"),
        "fontSizeType": "Custom",
        "customFontSize": size,
        "customFontLineHeight": size + 8,
        "bold": bold,
        "italic": False,
        "strikeThrough": False,
        "lineHeight": "normal",
        "styleType": "custom",
        "gravity": "left",
        "autoWidth": False,
        "autoMaxWidth": False,
        "fixedWidth": _fixed("Number", 0),
        "maxWidth": _fixed("Number", 0),
        "maxLine": _fixed("Number", lines),
        "enableIcon": False,
        "margin": 0,
        **_margins(),
        "visible": _visible(),
    }
    props.update(extra)
    return _node("BaseText", key, title, props)


def _grid(key: str, title: str, children: list[Any], *, direction: str = "vertical", **extra: Any) -> Any:
    props = {
        "direction": direction,
        "childGravity": "leftTop",
        "isAutoHeight": True,
        "height": 100,
        "isAutoWidth": False,
        "isFixedWidth": False,
        "width": 100,
        "hasBackground": False,
        "backgroundType": "Custom",
        "backgroundColor": "#FFFFFF",
        "darkModeBackgroundColor": "#242B36",
        "hasBorder": False,
        "hasGradientBackground": False,
        "cornerRadius": 0,
        "enableClickEvent": False,
        "actionType": "none",
        "events": [],
        "visible": _visible(),
        **_margins(0, 0, 0, 0),
    }
    props.update(extra)
    return _node("Grid", key, title, props, children)


def _button(n: int, style: str) -> Any:
    text, action, style_var = button_variables(n)
    props = {
        "text": _string("${" + text + "}"),
        "status": {
            "type": "dynamicSelect",
            "valueType": "fixed",
            "value": "normal",
            "variable": "",
            "variableType": "global",
        },
        "color": {
            "type": "dynamicSelect",
            "valueType": "fixed",
            "value": _COLORS[style],
            "variable": "",
            "variableType": "global",
        },
        "actionType": "request",
        "actionId": _string(dt.action_id(n)),
        "params": [
            {
                "id": "0",
                "name": dt.CALLBACK_PARAM,
                "type": "variable",
                "variable": action,
                "variableType": "global",
                "value": "",
            }
        ],
        "visible": _visible(_equal(style_var, style)),
        "successToast": _string(""),
        "failureToast": _string("操作失败，请重试"),
        "disabledWhileForward": True,
        **_margins(),
    }
    return _node("SingleButton", f"btn{n}_{style}", f"按钮 {n}（{style}）", props)


def _variable(name: str) -> dict[str, Any]:
    description = _DESCRIPTIONS.get(name, "")
    if not description:
        n, part = name[3:].split("_")
        description = {
            "text": f"按钮 {n} 文字（空：不显示）",
            "action": f"按钮 {n} 的动作键，点击时作为回传参数 action 回传",
            "style": f"按钮 {n} 样式：primary / danger / default（空：不显示）",
        }[part]
    var: dict[str, Any] = {
        "name": name,
        "id": name,
        "type": "loopArray" if name == "rows" else "string",
        "private": False,
        "description": description,
        "editorVarType": "variables",
    }
    if name == "rows":
        var["schema"] = [
            {
                "name": f,
                "id": f"rows[0].{f}",
                "type": "string",
                "private": False,
                "description": "",
                "editorVarType": "variables",
            }
            for f in dt.ROW_FIELDS
        ]
    return var


def build_template() -> dict[str, Any]:
    """The importable template: header texts, a Loop over ``rows``, six button slots (one
    button per style, shown by ``btnN_style``) in an area shown while ``status`` is pending, the
    greyed result shown when it is done, and a "查看详情" link to ``link_url``."""
    row = _grid(
        "row",
        "一行：字段名 + 值",
        [
            _text(
                "row_key",
                "字段名",
                "${loop.key}",
                14,
                "#8F959E",
                lines=1,
                autoWidth=True,
                **_margins(0, 8, 2, 2),
            ),
            _text("row_value", "字段值", "${loop.value}", 14, "#171A1D", lines=3, **_margins(0, 0, 2, 2)),
        ],
        direction="horizontal",
    )
    rows = _node(
        "Loop",
        "rows",
        "字段列表（rows）",
        {
            "listData": _ref("rows"),
            "direction": "vertical",
            "scrollable": False,
            "childGap": False,
            "visible": _visible(),
            **_margins(12, 12, 4, 4),
        },
        [row],
    )
    buttons = _grid(
        "buttons",
        "按钮区：status = pending 时显示",
        [_button(n, style) for n in range(1, MAX_BUTTONS + 1) for style in dt.STYLES],
        visible=_visible(_equal("status", dt.STATUS_PENDING)),
        **_margins(0, 0, 6, 2),
    )
    link = _grid(
        "link",
        "查看详情：打开 link_url",
        [_text("link_text", "链接文字", "${link_text}", 14, "#007FFF", lines=1)],
        enableClickEvent=True,
        actionType="url",
        urlType="all",
        url={
            "type": "dynamicLink",
            "valueType": "variable",
            "value": "",
            "variable": "link_url",
            "variableType": "global",
        },
    )
    root = _node(
        "Card",
        "root",
        "ticketbot 工单卡片",
        {
            "enableClickEvent": False,
            "showCloseButton": False,
            "autoFoldConfig": {
                "needFold": False,
                "heightLimit": 480,
                "foldStatusLocalDataKey": "_cardFoldStatusLocalDataKey",
            },
            "summaryContent": _ref("title"),
            "paddingTop": 8,
            "paddingBottom": 8,
            "paddingLeft": 0,
            "paddingRight": 0,
        },
        [
            _text("source", "来源", "${source}", 12, "#8F959E", lines=1),
            _text("title", "标题", "${title}", 16, "#171A1D", bold=True),
            _text("subtitle", "副标题", "${subtitle}", 14, "#5F6368"),
            rows,
            buttons,
            _text(
                "result",
                "处理结果：status = done 时显示",
                "${result_text}",
                14,
                "#A2A3A4",
                visible=_visible(_equal("status", dt.STATUS_DONE)),
            ),
            link,
        ],
    )
    components = ["BaseText", "Card", "Grid", "Loop", "SingleButton"]
    mock: dict[str, Any] = dict(render_dingtalk(_pending()).param_map)
    mock["rows"] = json.loads(mock["rows"])
    editor = {
        "schemaVersion": "3.0.0",
        "schema": {
            "version": "1.0.0",
            "componentsMap": [
                {
                    "package": "@ali/dxComponent",
                    "version": "1.0.0",
                    "exportName": c,
                    "main": "./src/index.tsx",
                    "destructuring": False,
                    "subName": "",
                    "componentName": c,
                }
                for c in components
            ],
            "componentsTree": [root],
            "i18n": {},
        },
        "mockData": {"cardData": mock, "cardPrivateData": {}, "localData": {}, "richTextData": {}},
        "editVersion": 0,
        "customWidgetInfo": "",
        "useCustomWidgetInfo": False,
        "variableList": [_variable(name) for name in VARIABLES],
        "formList": [],
        "expList": [],
        "localList": [],
        "hsfList": [],
        "lwpList": [],
        "pageData": {},
        "extension": {"extendType": "NORMAL", "fileTypeList": []},
    }
    return {
        "editorData": json.dumps(editor, ensure_ascii=False, separators=(",", ":")),
        "widgetInfo": "",
        "type": "im",
        "mode": "card",
    }


def _shipped() -> dict[str, Any]:
    data = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_shipped_template_is_current() -> None:
    text = json.dumps(build_template(), ensure_ascii=False, indent=2) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        TEMPLATE.write_text(text, encoding="utf-8")
        return
    assert TEMPLATE.read_text(encoding="utf-8") == text, "run with UPDATE_SNAPSHOTS=1 and review the diff"


def _walk(value: Any) -> Any:
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def test_template_references_exactly_the_rendered_variables() -> None:
    wrapper = _shipped()
    assert (wrapper["type"], wrapper["mode"], wrapper["widgetInfo"]) == ("im", "card", "")
    editor = json.loads(wrapper["editorData"])
    declared = [v["name"] for v in editor["variableList"]]
    used: set[str] = set()
    loop_fields: set[str] = set()
    for item in _walk(editor["schema"]["componentsTree"]):
        if isinstance(item, dict) and item.get("variable") and item.get("variableType") == "global":
            used.add(item["variable"])
        if isinstance(item, str):
            for name in _PLACEHOLDER.findall(item):
                if name.startswith("loop."):
                    loop_fields.add(name.removeprefix("loop."))
                else:
                    used.add(name)
    emitted = set(render_dingtalk(_pending()).param_map)
    assert sorted(declared) == sorted(emitted) == sorted(used)
    assert loop_fields == set(dt.ROW_FIELDS)
    rows = next(v for v in editor["variableList"] if v["name"] == "rows")
    assert [f["name"] for f in rows["schema"]] == list(dt.ROW_FIELDS)
    assert set(editor["mockData"]["cardData"]) == emitted


def test_template_components_and_button_callbacks() -> None:
    editor = json.loads(_shipped()["editorData"])
    mapped = {c["componentName"] for c in editor["schema"]["componentsMap"]}
    nodes = [
        i for i in _walk(editor["schema"]["componentsTree"]) if isinstance(i, dict) and "componentName" in i
    ]
    assert {n["componentName"] for n in nodes} == mapped
    assert len({n["id"] for n in nodes}) == len(nodes)
    buttons = [n for n in nodes if n["componentName"] == "SingleButton"]
    assert len(buttons) == MAX_BUTTONS * len(dt.STYLES)
    for b in buttons:
        n = int(b["id"].split("btn")[1].split("_")[0])
        text, action, style = button_variables(n)
        props = b["props"]
        assert props["actionType"] == "request"
        assert props["actionId"]["content"] == f"btn{n}"
        assert props["text"]["content"] == "${" + text + "}"
        assert [(p["name"], p["variable"]) for p in props["params"]] == [("action", action)]
        (shown,) = props["visible"]["condition"]["conditions"]
        assert shown["variable"] == style and shown["value"] in dt.STYLES
    area = next(n for n in nodes if n["id"] == "node_ticketbot_buttons")
    assert area["props"]["visible"]["condition"]["conditions"] == [_equal("status", "pending")]
    result = next(n for n in nodes if n["id"] == "node_ticketbot_result")
    assert result["props"]["visible"]["condition"]["conditions"] == [_equal("status", "done")]
