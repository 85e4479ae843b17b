"""A workflow's start form in chat: which fields to ask, reading one typed value, the questions.

Pure text and data (no I/O). Values are checked with the engine's own coercion
(`core.fields.coerce`, the function `decide()` applies to a create), after chat conveniences that
only translate what a person types into what the engine expects: a choice's label for its key
(``年假`` -> ``annual``), 是/否 or yes/no for a boolean, a person's name (alias) for their username.
So the dialogue never keeps a value the engine would refuse.

The CC list (抄送) is written ``抄送=...`` (or ``cc=...`` unless the workflow has a field ``cc``);
names are usernames or aliases, separated by commas or 、.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from bot.handlers.commands import CC_WORDS
from bot.handlers.help import Lang
from core.fields import FieldValueError, coerce
from core.form import empty
from core.org import Org
from core.workflow import CHOICE_TYPES, MULTI_TYPES, CustomField, FieldAccess, FieldType, Transition, Workflow

CC_STEP: Final = "@cc"
"""The key of the CC step (asked only after a bad CC list); never a field key."""
TITLE_MAX: Final = 500
_FEW: Final = 20  # choices listed in a question
_SPLIT: Final = re.compile(r"[,、;；]")
_PEOPLE_SPLIT: Final = re.compile(r"[,、;；\s]+")
_TEXT_TYPES: Final = frozenset({FieldType.STRING, FieldType.TEXTAREA, FieldType.RICH_TEXT})
_YES: Final = frozenset({"是", "对", "好", "yes", "y"})
_NO: Final = frozenset({"否", "不", "不是", "no", "n"})


def _t(lang: Lang, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


@dataclass(frozen=True, slots=True)
class Step:
    """One question of the dialogue: a writable field of the start form, the title or the CC list."""

    key: str
    required: bool
    field: CustomField | None = None  # None: the title, or the CC list (key CC_STEP)

    def label(self, lang: Lang) -> str:
        if self.field is not None:
            return f"{self.field.name}（{self.key}）" if lang == "zh" else f"{self.field.name} ({self.key})"
        if self.key == CC_STEP:
            return _t(lang, "抄送人", "CC")
        return _t(lang, "标题（title）", "title")

    @property
    def free_text(self) -> bool:
        if self.field is None:
            return self.key == "title"
        return self.field.type in _TEXT_TYPES


CC = Step(CC_STEP, required=False)


@dataclass(frozen=True, slots=True)
class Problem:
    """A value that was not accepted, and why (a sentence in the person's language)."""

    key: str
    text: str


@dataclass(frozen=True, slots=True)
class Filled:
    """What a message filled in: field values (None = an optional field left empty), the CC list
    if it was given, and what was refused."""

    fields: Mapping[str, Any]
    cc: tuple[str, ...] | None
    problems: tuple[Problem, ...]


def steps(wf: Workflow, t: Transition) -> tuple[Step, ...]:
    """The writable fields of the start state, in form order. Required only if the start
    transition checks required fields (as the engine does)."""
    out = []
    for key, access in wf.start_state().fields.items():
        if access not in (FieldAccess.REQUIRED, FieldAccess.OPTIONAL):
            continue
        fdef = wf.field_def(key)
        if fdef is None and key != "title":
            continue
        out.append(Step(key, t.field_require_check and access == FieldAccess.REQUIRED, fdef))
    return tuple(out)


def is_cc_key(wf: Workflow, key: str) -> bool:
    """Does `key` name the CC list (抄送 always; cc unless the workflow has a field cc)?"""
    return key in CC_WORDS or (key == "cc" and wf.field_def("cc") is None)


def has_default(step: Step) -> bool:
    return step.field is not None and not empty(step.field.default)


def answered(step: Step, fields: Mapping[str, Any]) -> bool:
    """Has the person dealt with the step: given a value, or skipped it (None in `fields`), which
    for a required field with a default means taking the default?"""
    if step.key not in fields:
        return False
    return not empty(fields[step.key]) or not step.required or has_default(step)


def next_step(form: Sequence[Step], fields: Mapping[str, Any]) -> Step | None:
    """The next field to ask, in form order, while a required field is not answered yet (optional
    fields on the way are asked too and may be skipped; a required field with a default is asked
    too, and skipping takes the default). None: ready."""
    if all(answered(s, fields) for s in form if s.required):
        return None
    for s in form:
        if answered(s, fields) or (not s.required and s.key == "title"):
            continue
        return s
    return None  # pragma: no cover - a required step is not answered, so the loop returned it


# ---------------------------------------------------------------- people


@dataclass(frozen=True, slots=True)
class People:
    usernames: tuple[str, ...]
    unknown: tuple[str, ...] = ()
    ambiguous: tuple[str, ...] = ()


def people(text: str, org: Org) -> People:
    """Usernames for the names in `text` (usernames or aliases of active users, comma-separated)."""
    found: list[str] = []
    unknown: list[str] = []
    ambiguous: list[str] = []
    for name in (p.strip() for p in _PEOPLE_SPLIT.split(text)):
        if not name:
            continue
        if org.active(name):
            found.append(name)
            continue
        matches = [u.username for u in org.users.values() if u.is_active and u.alias and u.alias == name]
        if len(matches) == 1:
            found.append(matches[0])
        elif matches:
            ambiguous.append(name)
        else:
            unknown.append(name)
    return People(tuple(dict.fromkeys(found)), tuple(unknown), tuple(ambiguous))


def people_problem(key: str, got: People, lang: Lang) -> Problem | None:
    parts = []
    if got.unknown:
        names = _t(lang, "、", ", ").join(got.unknown)
        parts.append(_t(lang, f"找不到这些人：{names}", f"no active user named {names}"))
    if got.ambiguous:
        names = _t(lang, "、", ", ").join(got.ambiguous)
        parts.append(
            _t(lang, f"{names} 对应多个人，请写用户名", f"{names} matches several people; use the username")
        )
    if not parts:
        return None
    return Problem(key, _t(lang, "；", "; ").join(parts))


# ---------------------------------------------------------------- one value


def read(step: Step, raw: str, folded: str, org: Org, lang: Lang) -> Any | Problem:
    """The canonical value of one typed answer to `step`, or why it is refused. An empty answer
    to an optional field is None (left empty)."""
    text = (raw if step.free_text else folded).strip()
    if not text:
        if step.required:
            return Problem(step.key, _t(lang, "这一项必填", "this field is required"))
        return None
    if step.key == CC_STEP:
        got = people(text, org)
        return people_problem(step.key, got, lang) or got.usernames
    fdef = step.field
    if fdef is None:  # the title
        if len(text) > TITLE_MAX:
            return Problem(step.key, _t(lang, f"标题最多 {TITLE_MAX} 字", f"at most {TITLE_MAX} characters"))
        return text
    value: Any = text
    if fdef.type in CHOICE_TYPES:
        value = _choice_keys(fdef, text)
    elif fdef.type == FieldType.BOOL:
        value = _boolean(fdef, text)
    elif fdef.type in (FieldType.USER, FieldType.MULTI_USER):
        got = people(text, org)
        problem = people_problem(step.key, got, lang)
        if problem is not None:
            return problem
        if fdef.type == FieldType.USER and len(got.usernames) > 1:
            return Problem(step.key, _t(lang, "只能填一个人", "only one person, please"))
        value = list(got.usernames) if fdef.type == FieldType.MULTI_USER else ",".join(got.usernames)
    try:
        return coerce(fdef, value, org)
    except FieldValueError as exc:
        return Problem(step.key, exc.message if lang == "en" else _zh_reason(fdef, exc.message))


def _choice_keys(fdef: CustomField, text: str) -> str:
    """Labels (any case) and keys (any case) -> keys; what matches nothing is left for coerce."""
    by_label = {str(label).casefold(): key for key, label in fdef.choices.items()}
    by_key = {key.casefold(): key for key in fdef.choices}
    items = [p.strip() for p in _SPLIT.split(text)] if fdef.type in MULTI_TYPES else [text]
    keys = []
    for item in items:
        if item in fdef.choices:
            keys.append(item)
        else:
            keys.append(by_key.get(item.casefold()) or by_label.get(item.casefold()) or item)
    return ",".join(keys)


def _boolean(fdef: CustomField, text: str) -> str:
    word = text.casefold()
    for raw, label in fdef.boolean_display.items():
        if str(label).casefold() == word:
            return str(raw)
    if word in _YES:
        return "true"
    if word in _NO:
        return "false"
    return text


_ZH_KIND: Final[Mapping[FieldType, str]] = {
    FieldType.INT: "应为整数，例如 2",
    FieldType.FLOAT: "应为数字，例如 1.5",
    FieldType.BOOL: "应为 是 或 否",
    FieldType.DATE: "应为日期，例如 2024-05-01",
    FieldType.DATETIME: "应为日期和时间，例如 2024-05-01 09:00（不带时区）",
    FieldType.USER: "应为一位在职用户",
    FieldType.MULTI_USER: "应为在职用户，多人用逗号分隔",
    FieldType.ATTACHMENT: "应为链接或文件路径",
}


def _zh_reason(fdef: CustomField, message: str) -> str:
    if "too long" in message or "longer than" in message:
        return "内容太长了"
    if fdef.type in CHOICE_TYPES:
        return "应为以下之一：" + "、".join(f"{k}（{v}）" for k, v in list(fdef.choices.items())[:_FEW])
    return _ZH_KIND.get(fdef.type, "格式不对")


# ---------------------------------------------------------------- several values (key=value)


def fill(wf: Workflow, form: Sequence[Step], pairs: Mapping[str, str], org: Org, lang: Lang) -> Filled:
    """Read KEY=VALUE pairs (from a create line or a dialogue message) against the start form."""
    by_key = {s.key: s for s in form}
    values: dict[str, Any] = {}
    cc: tuple[str, ...] | None = None
    problems: list[Problem] = []
    for key, text in pairs.items():
        if is_cc_key(wf, key):
            got = read(CC, text, text, org, lang)
            if isinstance(got, Problem):
                problems.append(got)
            else:
                cc = tuple(dict.fromkeys((*(cc or ()), *(got or ()))))  # 抄送= and cc= add up
            continue
        step = by_key.get(key)
        if step is None:
            problems.append(Problem(key, _not_in_form(wf, form, key, lang)))
            continue
        got = read(step, text, text, org, lang)
        if isinstance(got, Problem):
            problems.append(got)
        else:
            values[key] = got
    return Filled(values, cc, tuple(problems))


def _not_in_form(wf: Workflow, form: Sequence[Step], key: str, lang: Lang) -> str:
    keys = ", ".join(s.key for s in form)
    if wf.field_def(key) is not None:
        return _t(
            lang,
            f"发起时不能填写 {key}（可填：{keys}）",
            f"{key} cannot be filled in when starting (fields: {keys})",
        )
    return _t(lang, f"没有字段 {key}（可填：{keys}）", f"there is no field {key} (fields: {keys})")


def problem_lines(problems: Sequence[Problem], form: Sequence[Step], lang: Lang) -> list[str]:
    by_key = {s.key: s for s in form}
    by_key[CC_STEP] = CC
    out = []
    for p in problems:
        step = by_key.get(p.key)
        name = step.label(lang) if step is not None else p.key
        out.append(_t(lang, f"“{name}”没有填上：{p.text}。", f"{name} was not accepted: {p.text}."))
    return out


# ---------------------------------------------------------------- questions

_KIND: Final[Mapping[FieldType, tuple[str, str]]] = {
    FieldType.STRING: ("文字", "text"),
    FieldType.TEXTAREA: ("文字", "text"),
    FieldType.RICH_TEXT: ("文字", "text"),
    FieldType.INT: ("整数", "a whole number"),
    FieldType.FLOAT: ("数字", "a number"),
    FieldType.BOOL: ("是/否", "yes/no"),
    FieldType.DATE: ("日期", "a date"),
    FieldType.DATETIME: ("日期时间", "a date and time"),
    FieldType.RADIO: ("单选", "one choice"),
    FieldType.SELECT: ("单选", "one choice"),
    FieldType.CHECKBOX: ("多选，用逗号分隔", "several choices, comma-separated"),
    FieldType.MULTI_SELECT: ("多选，用逗号分隔", "several choices, comma-separated"),
    FieldType.USER: ("一个人：用户名或姓名", "a person: username or name"),
    FieldType.MULTI_USER: ("多个人：用户名或姓名，用逗号分隔", "people: usernames or names, comma-separated"),
    FieldType.ATTACHMENT: ("链接或文件路径", "a URL or file path"),
}


def _example(fdef: CustomField, today: date, lang: Lang) -> str:
    if fdef.type in CHOICE_TYPES and fdef.choices:
        keys = list(fdef.choices)
        return ",".join(keys[:2]) if fdef.type in MULTI_TYPES else keys[0]
    if fdef.type in _TEXT_TYPES:
        return ""
    if fdef.placeholder:
        return fdef.placeholder
    samples: Mapping[FieldType, str] = {
        FieldType.INT: "2",
        FieldType.FLOAT: "1.5",
        FieldType.BOOL: _t(lang, "是", "yes"),
        FieldType.DATE: today.isoformat(),
        FieldType.DATETIME: f"{today.isoformat()} 09:00",
        FieldType.USER: _t(lang, "zhangsan 或 张三", "zhangsan"),
        FieldType.MULTI_USER: _t(lang, "zhangsan,李四", "zhangsan,lisi"),
        FieldType.ATTACHMENT: "https://example.com/file.pdf",
    }
    return samples.get(fdef.type, "")


def _display_default(fdef: CustomField) -> str:
    values = fdef.default if isinstance(fdef.default, list | tuple) else [fdef.default]
    shown = []
    for v in values:
        label = fdef.choices.get(str(v)) if fdef.choices else None
        shown.append(f"{v}（{label}）" if label else str(v))
    return ", ".join(shown)


def question(wf: Workflow, step: Step, lang: Lang, today: date) -> str:
    """Ask for one field: its name and key, type, whether required, choices, an example, and how to
    skip (optional) or cancel."""
    mark = _t(lang, "必填", "required") if step.required else _t(lang, "选填", "optional")
    fdef = step.field
    if fdef is not None:
        kind = _KIND.get(fdef.type, ("文字", "text"))[0 if lang == "zh" else 1]
    elif step.key == CC_STEP:
        kind = _t(lang, "用户名或姓名，用逗号分隔", "usernames or names, comma-separated")
    else:
        kind = _t(lang, "文字", "text")
    lines = [
        _t(
            lang,
            f"“{wf.name}”请填写 {step.label(lang)}：{kind}，{mark}",
            f"'{wf.name}': please give {step.label(lang)}: {kind}, {mark}",
        )
    ]
    if fdef is not None and fdef.description:
        lines.append(fdef.description)
    if fdef is not None and fdef.type in CHOICE_TYPES and fdef.choices:
        shown = [f"{k}={v}" for k, v in list(fdef.choices.items())[:_FEW]]
        more = "…" if len(fdef.choices) > _FEW else ""
        lines.append(
            _t(lang, "可选：", "Choices: ")
            + _t(lang, "、", ", ").join(shown)
            + more
            + _t(lang, "（回复值或名称）", " (reply with the value or the name)")
        )
    if fdef is not None:
        example = _example(fdef, today, lang)
    else:
        example = _t(lang, "zhangsan,李四", "zhangsan,lisi") if step.key == CC_STEP else ""
    if example:
        lines.append(_t(lang, f"例如：{example}", f"Example: {example}"))
    elif fdef is not None and fdef.placeholder:
        lines.append(_t(lang, f"提示：{fdef.placeholder}", f"Hint: {fdef.placeholder}"))
    else:
        lines.append(_t(lang, "直接回复内容即可。", "Just type it."))
    if fdef is not None and has_default(step):
        default = _display_default(fdef)
        lines.append(_t(lang, f"默认：{default}", f"Default: {default}"))
    if step.required and has_default(step):
        lines.append(
            _t(
                lang,
                "回复“跳过”使用默认值，回复“取消”放弃填写。",
                'Reply "skip" to take the default, "cancel" to give up.',
            )
        )
    elif step.required:
        lines.append(_t(lang, "回复“取消”放弃填写。", 'Reply "cancel" to give up.'))
    else:
        lines.append(
            _t(
                lang,
                "回复“跳过”不填这一项，回复“取消”放弃填写。",
                'Reply "skip" to leave it empty, "cancel" to give up.',
            )
        )
    return "\n".join(lines)
