"""Chat text -> intent: every command in Chinese and English, quoting, full-width forms, refs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.handlers.commands import (
    KEYWORDS,
    Cancel,
    Comment,
    Create,
    Decide,
    Help,
    Intent,
    ListMine,
    ListPending,
    ListWorkflows,
    Show,
    Unknown,
    Urge,
    Withdraw,
    parse,
)
from bot.handlers.help import EXAMPLES, help_text, reply_language, unknown_reply

SN = "loonflow_202611210001"

CASES: list[tuple[str, Intent]] = [
    # help
    ("help", Help()),
    ("HELP", Help()),
    ("帮助", Help()),
    ("?", Help()),
    ("？", Help()),
    ("菜单", Help()),
    ("", Help()),
    ("   \u3000 ", Help()),
    ("/help", Help()),
    ("help create", Help()),
    ("@工单助手 帮助", Help()),
    ("@工单助手\u2005帮助", Help()),
    ("＠工单助手\u3000帮助", Help()),
    ("@工单助手", Help()),
    # workflows
    ("workflows", ListWorkflows()),
    ("Workflows", ListWorkflows()),
    ("流程", ListWorkflows()),
    ("我能发起什么", ListWorkflows()),
    ("我能发起什么？", ListWorkflows()),
    # create
    ("create 请假申请", Create("请假申请")),
    ("发起 请假申请", Create("请假申请")),
    ("发起请假申请", Create("请假申请")),
    ("新建 1", Create("1")),
    ("申请 请假", Create("请假")),
    ("create", Create("")),
    ("create leave days=3 reason=家里有事", Create("leave", {"days": "3", "reason": "家里有事"})),
    ('create leave reason="家里 有事"', Create("leave", {"reason": "家里 有事"})),
    ("发起 请假申请 reason=“家里 有事” days＝３", Create("请假申请", {"reason": "家里 有事", "days": "3"})),
    ("发起 IT 权限申请 system=vpn", Create("IT 权限申请", {"system": "vpn"})),
    ('create "IT 权限申请" system=vpn', Create("IT 权限申请", {"system": "vpn"})),
    ("create leave reason=", Create("leave", {"reason": ""})),
    ("create leave note=a=b", Create("leave", {"note": "a=b"})),
    ("CREATE   leave\u3000days=2", Create("leave", {"days": "2"})),
    # todo / mine
    ("todo", ListPending()),
    ("pending", ListPending()),
    ("待办", ListPending()),
    ("我的待办", ListPending()),
    ("待处理", ListPending()),
    ("todo 2", ListPending(2)),
    ("待办 ３", ListPending(3)),
    ("my tickets", ListMine()),
    ("My  Tickets", ListMine()),
    ("我的工单", ListMine()),
    ("我发起的", ListMine()),
    ("我的工单 2", ListMine(2)),
    # show
    ("show 123", Show(123)),
    ("查看 123", Show(123)),
    ("查看123", Show(123)),
    ("#123", Show(123)),
    ("＃１２３", Show(123)),
    ("show #123", Show(123)),
    (f"工单 {SN}", Show(SN)),
    (f"show {SN}", Show(SN)),
    ("show 123456789012345678", Show(123456789012345678)),
    ("查看 123。", Show(123)),
    # urge
    ("urge 123", Urge(123)),
    ("urge 123 please hurry", Urge(123, "please hurry")),
    ("催办 123", Urge(123)),
    ("催办 123 请尽快", Urge(123, "请尽快")),
    ("催办123请尽快", Urge(123, "请尽快")),
    (f"催办 {SN} 急", Urge(SN, "急")),
    # comment
    ("comment 123 documents attached", Comment(123, "documents attached")),
    ("评论 123 内容", Comment(123, "内容")),
    ("评论 123：已补充\n第二行", Comment(123, "已补充\n第二行")),
    # withdraw
    ("withdraw 123", Withdraw(123)),
    ("withdraw 123 wrong dates", Withdraw(123, "wrong dates")),
    ("撤回 123", Withdraw(123)),
    ("撤回 123 原因", Withdraw(123, "原因")),
    # decide
    ("approve 123", Decide(123, "agree")),
    ("approve 123 looks good", Decide(123, "agree", "looks good")),
    ("同意 123", Decide(123, "agree")),
    ("同意 123，没问题", Decide(123, "agree", "没问题")),
    ("reject 123 why not", Decide(123, "reject", "why not")),
    ("拒绝 123", Decide(123, "reject")),
    ("拒绝 123 原因", Decide(123, "reject", "原因")),
    (f"驳回 {SN} 材料不全", Decide(SN, "reject", "材料不全")),
    ("Approve #7", Decide(7, "agree")),
    # cancel
    ("cancel", Cancel()),
    ("取消", Cancel()),
    ("退出", Cancel()),
    ("@工单助手 取消", Cancel()),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
def test_parses(text: str, expected: Intent) -> None:
    assert parse(text) == expected


UNKNOWN: list[tuple[str, str | None, str]] = [
    ("hello", "help", "unknown command"),
    ("代办", "todo", "unknown command"),
    ("xyzzy", None, "unknown command"),
    ("今天天气怎么样", None, "unknown command"),
    ("showme 1", "show", "unknown command"),
    ("流程图", "workflows", "unknown command"),
    ("show", "show", "missing ticket"),
    ("查看", "show", "missing ticket"),
    ("show abc", "show", "bad ticket"),
    ("show 0", "show", "bad ticket"),
    ("show 1234567890123456789", "show", "bad ticket"),
    ("show 12 extra", "show", "unexpected text"),
    ("#abc", "show", "bad ticket"),
    ("工单 loonflow_2026112100", "show", "bad ticket"),
    ("工单 1loonflow_202611210001", "show", "bad ticket"),
    ("urge", "urge", "missing ticket"),
    ("comment 123", "comment", "missing text"),
    ("评论 123   ", "comment", "missing text"),
    ("withdraw x", "withdraw", "bad ticket"),
    ("同意", "approve", "missing ticket"),
    ("拒绝 abc", "reject", "bad ticket"),
    ("todo 0", "todo", "bad page"),
    ("我的工单 x", "mine", "bad page"),
    ("流程 abc", "workflows", "unexpected text"),
    ("cancel now", "cancel", "unexpected text"),
    ('create leave reason="家里 有事', "create", "unclosed quote"),
    ("create leave 天数=3", "create", "bad field"),
    ("create leave =3", "create", "bad field"),
    ("create leave days=1 days=2", "create", "duplicate field"),
    ("create leave reason=家里 有事", "create", "unquoted space"),
]


@pytest.mark.parametrize(("text", "suggestion", "reason"), UNKNOWN, ids=[repr(c[0]) for c in UNKNOWN])
def test_unknown(text: str, suggestion: str | None, reason: str) -> None:
    got = parse(text)
    assert isinstance(got, Unknown)
    assert (got.suggestion, got.reason) == (suggestion, reason)


def test_too_long() -> None:
    got = parse("帮" * 2001)
    assert isinstance(got, Unknown)
    assert got.reason == "too long"
    assert isinstance(parse("评论 1 " + "x" * 1990), Comment)


def test_bot_name_mention_without_space() -> None:
    assert parse("@工单助手查看123", bot_names=["工单助手"]) == Show(123)
    assert parse("@工单助手 @工单助手 同意 5", bot_names=["工单助手"]) == Decide(5, "agree")


def test_intents_are_frozen_and_hashable() -> None:
    intent = parse("create leave days=3")
    assert isinstance(intent, Create)
    with pytest.raises(AttributeError):
        intent.workflow_query = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        intent.fields["days"] = "4"  # type: ignore[index]
    assert len({intent, parse("create leave days=3"), Show(1)}) == 2


@settings(max_examples=400)
@given(st.text(max_size=300))
def test_never_raises(text: str) -> None:
    parse(text)
    assert reply_language(text) in ("zh", "en")


KEYWORD_TEXT = st.sampled_from([w for words in KEYWORDS.values() for w in words] + ["#", "@bot", "＝", "“"])


@settings(max_examples=400)
@given(
    st.lists(st.one_of(KEYWORD_TEXT, st.text(max_size=12)), max_size=6), st.sampled_from(["", " ", "\u3000"])
)
def test_never_raises_on_command_like_text(parts: list[str], sep: str) -> None:
    got = parse(sep.join(parts))
    if isinstance(got, Unknown):
        for lang in ("zh", "en"):
            assert unknown_reply(got, lang)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_help_lists_every_command_and_workflow(lang: str) -> None:
    assert lang in ("zh", "en")
    text = help_text(lang, [(1, "请假申请"), (3, "客服工单")])  # type: ignore[arg-type]
    assert set(EXAMPLES[lang]) == set(KEYWORDS)  # type: ignore[index]
    for example, _ in EXAMPLES[lang].values():  # type: ignore[index]
        assert example in text
    assert "请假申请" in text
    assert "客服工单" in text
    assert "1" in text


EXPECTED_KIND = {
    "help": Help,
    "workflows": ListWorkflows,
    "create": Create,
    "todo": ListPending,
    "mine": ListMine,
    "show": Show,
    "urge": Urge,
    "comment": Comment,
    "withdraw": Withdraw,
    "approve": Decide,
    "reject": Decide,
    "cancel": Cancel,
}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_help_examples_parse_to_their_command(lang: str) -> None:
    for name, (example, _) in EXAMPLES[lang].items():  # type: ignore[index]
        assert isinstance(parse(example), EXPECTED_KIND[name]), example
        assert reply_language(example) == lang


def test_help_text_without_workflows() -> None:
    assert "没有可发起的流程" in help_text("zh", [])
    assert "no workflows" in help_text("en", [])


def test_reply_language() -> None:
    assert reply_language("帮助") == "zh"
    assert reply_language("help 请假") == "zh"
    assert reply_language("？") == "zh"
    assert reply_language("help") == "en"
    assert reply_language("") == "en"


def test_unknown_reply_suggests_and_points_to_help() -> None:
    zh = unknown_reply(Unknown("代办", "todo"), "zh")
    assert "待办" in zh
    assert "帮助" in zh
    en = unknown_reply(Unknown("comment 5", "comment", "missing text"), "en")
    assert "comment 123" in en
    assert "help" in en
    assert "too long" in unknown_reply(Unknown("x", None, "too long"), "en")
