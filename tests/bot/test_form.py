"""The start form in chat (bot.handlers.form) and the dialogue helpers of bot.handlers.commands:
pure, no event loop. Whatever `read` accepts, the engine accepts too."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.handlers.commands import Create, answer, field_pairs, is_skip, parse
from bot.handlers.form import (
    CC,
    Problem,
    Step,
    fill,
    is_cc_key,
    next_step,
    people,
    question,
    read,
    steps,
)
from core.commands import Create as CoreCreate
from core.decide import decide
from core.errors import Rejected
from core.fields import coerce
from core.org import Org, User
from core.workflow import CustomField, FieldAccess, FieldType, State, StateType, Transition, Workflow
from tests.core.builders import ORG, ctx

TODAY = date(2026, 1, 5)
R, OPT, RO = FieldAccess.REQUIRED, FieldAccess.OPTIONAL, FieldAccess.READ_ONLY

FIELDS = (
    CustomField("name", "名称", FieldType.STRING, placeholder="简短的名称"),
    CustomField("note", "备注", FieldType.TEXTAREA),
    CustomField("count", "数量", FieldType.INT, default=1, description="件数"),
    CustomField("price", "单价", FieldType.FLOAT),
    CustomField("urgent", "加急", FieldType.BOOL, boolean_display={"0": "不急", "1": "很急"}),
    CustomField("day", "日期", FieldType.DATE),
    CustomField("at", "时间", FieldType.DATETIME),
    CustomField("kind", "类型", FieldType.RADIO, choices={"a": "甲", "b": "乙"}),
    CustomField("tags", "标签", FieldType.CHECKBOX, choices={"x": "红", "y": "绿", "z": "蓝"}),
    CustomField("owner", "负责人", FieldType.USER),
    CustomField("team", "成员", FieldType.MULTI_USER),
    CustomField("files", "附件", FieldType.ATTACHMENT),
    CustomField("secret", "内部", FieldType.STRING),
    CustomField("cc", "自定义 cc", FieldType.STRING),
)
FORM = {
    "title": OPT,
    "name": R,
    "note": OPT,
    "count": R,
    "price": OPT,
    "urgent": OPT,
    "day": R,
    "at": OPT,
    "kind": OPT,
    "tags": OPT,
    "owner": OPT,
    "team": OPT,
    "files": OPT,
    "secret": RO,
}


def _wf(
    form: dict[str, FieldAccess] | None = None,
    *,
    check: bool = True,
    fields: tuple[CustomField, ...] = FIELDS,
) -> Workflow:
    return Workflow(
        id=7,
        name="采购",
        version="v1",
        fields=fields,
        states=(
            State(1, "新建", type=StateType.START, fields=form if form is not None else FORM),
            State(2, "审批"),
            State(9, "结束", type=StateType.END),
        ),
        transitions=(Transition(10, "提交", 1, 2, field_require_check=check), Transition(20, "同意", 2, 9)),
    )


WF = _wf()
T = WF.transitions[0]
FORM_STEPS = steps(WF, T)
BY_KEY = {s.key: s for s in FORM_STEPS}


def test_steps_are_the_writable_start_fields_in_form_order() -> None:
    assert [s.key for s in FORM_STEPS] == [k for k, a in FORM.items() if a != RO]
    assert [s.key for s in FORM_STEPS if s.required] == ["name", "count", "day"]
    assert BY_KEY["title"].field is None and BY_KEY["title"].free_text
    assert BY_KEY["note"].free_text and not BY_KEY["count"].free_text
    unchecked = steps(_wf(check=False), _wf(check=False).transitions[0])
    assert not any(s.required for s in unchecked)  # the engine would not check them either


def test_next_step_walks_the_form_while_a_required_field_is_unanswered() -> None:
    assert next_step(FORM_STEPS, {}) == BY_KEY["name"]  # an optional title is never asked
    assert next_step(FORM_STEPS, {"name": "n"}) == BY_KEY["note"]
    assert next_step(FORM_STEPS, {"name": "n", "note": None}) == BY_KEY["count"]  # note skipped
    # count has a default: skipping (None) takes it
    assert next_step(FORM_STEPS, {"name": "n", "note": None, "count": None}) == BY_KEY["price"]
    done = {"name": "n", "count": 2, "day": "2026-01-05"}
    assert next_step(FORM_STEPS, done) is None  # optional fields after the last required are not asked
    assert next_step(FORM_STEPS, {**done, "name": None}) == BY_KEY["name"]  # a required one can't be skipped


def test_cc_keys() -> None:
    assert is_cc_key(WF, "抄送")
    assert not is_cc_key(WF, "cc")  # this workflow has a field named cc
    assert is_cc_key(_wf(fields=FIELDS[:-1]), "cc")


@pytest.mark.parametrize(
    ("key", "typed", "expected"),
    [
        ("name", "  两台电脑 ", "两台电脑"),
        ("note", "第一行，第二行", "第一行，第二行"),  # free text keeps full-width punctuation
        ("count", "３", 3),
        ("price", "12.5", 12.5),
        ("urgent", "是", True),
        ("urgent", "NO", False),
        ("urgent", "很急", True),
        ("urgent", "0", False),
        ("day", "2026-01-05", "2026-01-05"),
        ("at", "2026-01-05T09:30", "2026-01-05 09:30:00"),
        ("kind", "乙", "b"),
        ("kind", "A", "a"),
        ("tags", "红，z、绿", ["x", "z", "y"]),
        ("owner", "爱丽丝", "alice"),
        ("team", "bob, 卡罗尔", ["bob", "carol"]),
        ("files", "https://example.com/a b.pdf", ["https://example.com/a b.pdf"]),
        ("title", "我的标题", "我的标题"),
        ("note", "", None),  # optional and empty: left empty
    ],
)
def test_read_accepts_what_people_type(key: str, typed: str, expected: object) -> None:
    raw, folded = answer(typed)
    assert read(BY_KEY[key], raw, folded, ORG, "zh") == expected


@pytest.mark.parametrize(
    ("key", "typed", "zh", "en"),
    [
        ("count", "两件", "应为整数，例如 2", "expects an integer"),
        ("price", "nan", "应为数字", "expects a finite number"),
        ("urgent", "也许", "应为 是 或 否", "expects a boolean"),
        ("day", "2026-02-30", "应为日期", "expects a date"),
        ("at", "2026-01-05T09:00+08:00", "不带时区", "without a time zone"),
        ("kind", "丙", "应为以下之一：a（甲）、b（乙）", "expects one of 'a', 'b'"),
        ("tags", "红,紫", "应为以下之一", "expects one of"),
        ("owner", "nobody", "找不到这些人：nobody", "no active user named nobody"),
        ("owner", "离职", "找不到这些人：离职", "no active user named 离职"),
        ("owner", "alice,bob", "只能填一个人", "only one person"),
        ("team", "bob, ghost", "找不到这些人：ghost", "no active user named ghost"),
        ("name", "", "这一项必填", "this field is required"),
        ("name", "x" * 10_001, "内容太长了", "is too long"),
        ("title", "t" * 501, "标题最多 500 字", "at most 500 characters"),
    ],
)
def test_read_refuses_with_a_reason(key: str, typed: str, zh: str, en: str) -> None:
    raw, folded = answer(typed)
    for lang, reason in (("zh", zh), ("en", en)):
        got = read(BY_KEY[key], raw, folded, ORG, lang)  # type: ignore[arg-type]
        assert isinstance(got, Problem) and got.key == key and reason in got.text, (lang, got)


TYPED = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["1", "-3", "2.5", "true", "是", "否", "2026-01-05", "2026-01-05 10:00", "甲", "a,b"]),
    st.sampled_from(["alice", "爱丽丝", "bob,carol", "红,绿", "x", "https://e.com/f", "", " "]),
)


@settings(max_examples=300)
@given(st.sampled_from([s for s in FORM_STEPS]), TYPED)
def test_whatever_read_accepts_the_engine_accepts(step: Step, typed: str) -> None:
    raw, folded = answer(typed)
    got = read(step, raw, folded, ORG, "en")
    if isinstance(got, Problem) or got is None:
        return
    if step.field is not None:
        assert coerce(step.field, got, ORG) == got  # canonical: the engine keeps it as it is
    fields = {"name": "n", "count": 1, "day": "2026-01-05", step.key: got}
    decision = decide(None, WF, CoreCreate("alice", WF.id, T.id, fields=fields), ctx())
    assert not isinstance(decision, Rejected), decision


def test_fill_reads_pairs_cc_and_refuses_unknown_or_read_only_keys() -> None:
    got = fill(
        _wf(fields=FIELDS[:-1]),
        steps(_wf(fields=FIELDS[:-1]), T),
        {"count": "2", "cc": "爱丽丝", "抄送": "bob,alice"},
        ORG,
        "zh",
    )
    assert dict(got.fields) == {"count": 2}
    assert got.cc == ("alice", "bob")  # cc= and 抄送= add up
    assert got.problems == ()
    got = fill(WF, FORM_STEPS, {"secret": "s", "nope": "1", "count": "x", "抄送": "ghost"}, ORG, "en")
    assert got.fields == {} and got.cc is None
    texts = {p.key: p.text for p in got.problems}
    assert texts["secret"].startswith("secret cannot be filled in when starting (fields: title, name")
    assert texts["nope"].startswith("there is no field nope")
    assert "expects an integer" in texts["count"]
    assert texts[CC.key] == "no active user named ghost"
    assert fill(WF, FORM_STEPS, {"抄送": ""}, ORG, "zh").cc == ()  # an empty list clears it


def test_questions_name_the_field_type_choices_example_and_how_to_skip() -> None:
    q = question(WF, BY_KEY["name"], "zh", TODAY)
    assert q.splitlines() == [
        "“采购”请填写 名称（name）：文字，必填",
        "提示：简短的名称",
        "回复“取消”放弃填写。",
    ]
    q = question(WF, BY_KEY["count"], "en", TODAY)
    assert q.splitlines() == [
        "'采购': please give 数量 (count): a whole number, required",
        "件数",
        "Example: 2",
        "Default: 1",
        'Reply "skip" to take the default, "cancel" to give up.',
    ]
    q = question(WF, BY_KEY["tags"], "zh", TODAY)
    assert "可选：x=红、y=绿、z=蓝（回复值或名称）" in q and "例如：x,y" in q
    assert q.endswith("回复“跳过”不填这一项，回复“取消”放弃填写。")
    assert "Example: 2026-01-05" in question(WF, BY_KEY["day"], "en", TODAY)
    assert "直接回复内容即可。" in question(WF, BY_KEY["note"], "zh", TODAY)
    assert "usernames or names, comma-separated, optional" in question(WF, CC, "en", TODAY)


def test_people_by_username_or_alias() -> None:
    org = Org.build(
        [
            User("amy", alias="Amy"),
            User("li1", alias="李明"),
            User("li2", alias="李明"),
            User("gone", alias="走了", is_active=False),
        ]
    )
    got = people("amy, Amy、李明;gone 走了 nobody", org)
    assert got.usernames == ("amy",)
    assert got.ambiguous == ("李明",)
    assert got.unknown == ("gone", "走了", "nobody")


# ---------------------------------------------------------------- commands helpers


def test_cc_key_on_a_create_line() -> None:
    assert parse("发起 1 days=2 抄送=wangwu,zhaoliu") == Create("1", {"days": "2", "抄送": "wangwu,zhaoliu"})
    assert parse("create 1 cc＝王五") == Create("1", {"cc": "王五"})


def test_field_pairs() -> None:
    assert field_pairs('days=2 reason="家里 有事" 抄送=lina') == {
        "days": "2",
        "reason": "家里 有事",
        "抄送": "lina",
    }
    assert field_pairs("@工单助手 days＝３") == {"days": "3"}
    for text in ("", "days", "days=2 extra", "天数=2", "days=1 days=2", 'reason="open', "x" * 2001):
        assert field_pairs(text) is None, text


def test_answer_and_skip() -> None:
    assert answer("  家里有事，明天回 ") == ("家里有事，明天回", "家里有事,明天回")
    assert answer("“取消”") == ("取消", "取消")
    assert answer('"a" and "b"') == ('"a" and "b"', '"a" and "b"')
    assert answer("/srv/file") == ("/srv/file", "/srv/file")
    assert answer("@工单助手 ２") == ("２", "2")
    for text in ("skip", "SKIP", "跳过", "跳过。", "@bot 跳过", " skip! "):
        assert is_skip(text), text
    for text in ("skip it", "不跳过", '"跳过"'):
        assert not is_skip(text), text
