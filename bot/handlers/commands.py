"""Chat commands: one chat message (str) -> one intent. Pure, total (never raises), bilingual.

Grammar (after clean-up: zero-width characters removed, surrounding whitespace and any leading
``@mention`` stripped, an optional leading ``/``; full-width ASCII forms such as ``＝ ＃ １`` and
every Unicode space are read as their ASCII counterparts; English keywords are case-insensitive)::

    message   := ""                                   -> Help
               | "#" REF                              -> Show
               | KEYWORD [ARGS]
    help      := help | menu | ? | 帮助 | 菜单 [anything]
    workflows := workflows | 流程 | 流程列表 | 我能发起什么
    create    := create | new | 发起 | 新建 | 申请   [QUERY-WORD ...] [KEY=VALUE ...]
    todo      := todo | pending | 待办 | 我的待办 | 待处理   [PAGE]
    mine      := my tickets | mine | 我的工单 | 我发起的 | 我的申请   [PAGE]
    show      := show | view | 查看 | 工单 | 详情   REF
    urge      := urge | 催办   REF [note]
    comment   := comment | 评论 | 备注   REF text
    withdraw  := withdraw | 撤回 | 撤销   REF [reason]
    approve   := approve | agree | 同意 | 通过 | 批准   REF [suggestion]
    reject    := reject | deny | 拒绝 | 驳回   REF [suggestion]
    cancel    := cancel | quit | exit | 取消 | 退出
    REF       := positive int (<= 18 digits) | "#" int | SN  ([A-Za-z][A-Za-z0-9_-]{0,31}_\\d{8}\\d{4,})

A keyword is followed by a space, or ends the message (trailing ``?!.。~`` ignored); a Chinese
keyword that takes arguments may be followed by them directly (``催办123请尽快``). An integer ref
may be followed directly by non-ASCII text. KEY is ``[A-Za-z_][A-Za-z0-9_]*`` or ``抄送`` (the
creator's CC list; ``cc`` too, unless the workflow has a field of that name); a VALUE (or a
query word) may contain spaces only inside ``"..."`` or ``“...”``. Free text (note, comment,
reason, suggestion) is kept as typed. Anything else is ``Unknown`` with the closest command.

For the step-by-step dialogue (bot.handlers.dialogue), `field_pairs` reads a message made only of
KEY=VALUE pairs, `answer` reads a message as one value, and `is_skip` recognises 跳过 / skip.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

MAX_LENGTH: Final = 2000
MAX_PAGE: Final = 100_000

CommandName: TypeAlias = Literal[
    "help",
    "workflows",
    "create",
    "todo",
    "mine",
    "show",
    "urge",
    "comment",
    "withdraw",
    "approve",
    "reject",
    "cancel",
]
UnknownReason: TypeAlias = Literal[
    "unknown command",
    "too long",
    "missing ticket",
    "bad ticket",
    "missing text",
    "bad page",
    "unexpected text",
    "unclosed quote",
    "bad field",
    "duplicate field",
    "unquoted space",
]
Verdict: TypeAlias = Literal["agree", "reject"]
Ref: TypeAlias = int | str
"""A ticket reference: the ticket id (int > 0) or its serial number (str)."""


def _frozen(m: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class ListWorkflows:
    pass


@dataclass(frozen=True, slots=True)
class Create:
    """Start a ticket. `workflow_query` (id, name or part of a name) is resolved later."""

    workflow_query: str
    fields: Mapping[str, str] = field(default_factory=_frozen, hash=False)


@dataclass(frozen=True, slots=True)
class ListPending:
    page: int = 1


@dataclass(frozen=True, slots=True)
class ListMine:
    page: int = 1


@dataclass(frozen=True, slots=True)
class Show:
    ref: Ref


@dataclass(frozen=True, slots=True)
class Urge:
    ref: Ref
    note: str = ""


@dataclass(frozen=True, slots=True)
class Comment:
    ref: Ref
    text: str


@dataclass(frozen=True, slots=True)
class Withdraw:
    ref: Ref
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Decide:
    ref: Ref
    verdict: Verdict
    suggestion: str = ""


@dataclass(frozen=True, slots=True)
class Cancel:
    pass


@dataclass(frozen=True, slots=True)
class Unknown:
    """Not a command. `suggestion` names the closest command (or the one whose arguments were wrong)."""

    text: str
    suggestion: CommandName | None = None
    reason: UnknownReason = "unknown command"


Intent: TypeAlias = (
    Help
    | ListWorkflows
    | Create
    | ListPending
    | ListMine
    | Show
    | Urge
    | Comment
    | Withdraw
    | Decide
    | Cancel
    | Unknown
)

KEYWORDS: Final[Mapping[CommandName, tuple[str, ...]]] = MappingProxyType(
    {
        "help": ("help", "menu", "?", "帮助", "菜单"),
        "workflows": ("workflows", "流程", "流程列表", "我能发起什么"),
        "create": ("create", "new", "发起", "新建", "申请"),
        "todo": ("todo", "pending", "待办", "我的待办", "待处理"),
        "mine": ("my tickets", "mine", "我的工单", "我发起的", "我的申请"),
        "show": ("show", "view", "查看", "工单", "详情"),
        "urge": ("urge", "催办"),
        "comment": ("comment", "评论", "备注"),
        "withdraw": ("withdraw", "撤回", "撤销"),
        "approve": ("approve", "agree", "同意", "通过", "批准"),
        "reject": ("reject", "deny", "拒绝", "驳回"),
        "cancel": ("cancel", "quit", "exit", "取消", "退出"),
    }
)

CC_WORDS: Final = ("抄送",)
"""Field keys (besides the ASCII ``cc``) that name the creator's CC list on a create line."""
SKIP_WORDS: Final = ("skip", "跳过")

_NO_ARGS: Final = frozenset({"help", "workflows", "cancel"})
_ZERO_WIDTH: Final = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_TRAILING: Final = " ?!.~。…"
_TEXT_LEAD: Final = " ,:;\t\n\r\u3001\uff0c\uff1a\uff1b"
_OPEN_QUOTES: Final = '"“'
_CLOSE_QUOTES: Final = '"”'

_MENTION: Final = re.compile(r"@[^ ]*")
_REF: Final = re.compile(
    r"#?(?P<id>[0-9]{1,18})(?![A-Za-z0-9_-])|(?P<sn>[A-Za-z][A-Za-z0-9_-]{0,31}_[0-9]{12,})(?![A-Za-z0-9_-])",
    re.ASCII,
)
_PAGE: Final = re.compile(r"[0-9]{1,6}", re.ASCII)
_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}", re.ASCII)


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\U00020000" <= ch <= "\U0003ffff"


def _keyword_table() -> tuple[tuple[re.Pattern[str], CommandName, bool], ...]:
    rows: list[tuple[str, re.Pattern[str], CommandName, bool]] = []
    for name, words in KEYWORDS.items():
        for word in words:
            pattern = re.compile(r" +".join(map(re.escape, word.split())), re.IGNORECASE)
            rows.append((word, pattern, name, _is_cjk(word[-1])))
    rows.sort(key=lambda r: -len(r[0]))
    return tuple((p, n, cjk) for _, p, n, cjk in rows)


_TABLE: Final = _keyword_table()


def _fold(raw: str) -> str:
    """Same length as `raw`: any space -> ' ', full-width ASCII forms -> ASCII."""
    out = []
    for ch in raw:
        if ch.isspace():
            out.append(" ")
        elif "\uff01" <= ch <= "\uff5e":
            out.append(chr(ord(ch) - 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


def parse(text: str, bot_names: Iterable[str] = ()) -> Intent:
    """Read one chat message. Total: any string gives an intent, never an exception.

    A leading ``@mention`` ends at the next space; with `bot_names`, ``@<bot name>`` is also
    recognised when the command follows without a space (``@工单助手帮助``).
    """
    if len(text) > MAX_LENGTH:
        return Unknown(text[:200], None, "too long")
    raw, w = _clean(text, bot_names)
    if w == "":
        return Help()
    if w.startswith("#"):
        return _show(raw, w, raw)
    for pattern, name, cjk in _TABLE:
        km = pattern.match(w)
        if km is None:
            continue
        end = km.end()
        rest = w[end:]
        if rest.rstrip(_TRAILING) == "":
            rest_raw, rest = "", ""
        elif rest.startswith(" ") or (cjk and name not in _NO_ARGS):
            cut = end + len(rest) - len(rest.lstrip())
            rest_raw, rest = raw[cut:], w[cut:]
        else:
            continue
        return _command(name, raw, rest_raw, rest)
    return Unknown(raw, _closest(w))


def _clean(text: str, bot_names: Iterable[str] = (), *, slash: bool = True) -> tuple[str, str]:
    """(as typed, folded): zero-width characters, surrounding spaces, leading @mentions and an
    optional leading ``/`` removed; the folded text has the same length (see `_fold`)."""
    raw = text.translate(_ZERO_WIDTH).strip()
    w = _fold(raw)
    names = sorted((_fold(n).strip() for n in bot_names), key=len, reverse=True)
    while w.startswith("@"):
        name = next((n for n in names if n and w.startswith(n, 1)), None)
        m = _MENTION.match(w)
        end = 1 + len(name) if name is not None else (m.end() if m else len(w))
        raw, w = raw[end:], w[end:]
        cut = len(w) - len(w.lstrip())
        raw, w = raw[cut:], w[cut:]
    if slash and w.startswith("/"):
        raw, w = raw[1:], w[1:]
    cut = len(w) - len(w.lstrip())
    return raw[cut:], w[cut:]


def _field_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None or key in CC_WORDS


def field_pairs(text: str, bot_names: Iterable[str] = ()) -> dict[str, str] | None:
    """The KEY=VALUE pairs of a message made only of them (``days=2 reason="家里 有事"``), else None
    (also for a repeated key, an unclosed quote or a message over MAX_LENGTH)."""
    if len(text) > MAX_LENGTH:
        return None
    _, w = _clean(text, bot_names)
    tokens = _lex(w)
    if not tokens:
        return None
    pairs: dict[str, str] = {}
    for token, eq in tokens:
        if eq is None or not _field_key(token[:eq]) or token[:eq] in pairs:
            return None
        pairs[token[:eq]] = token[eq + 1 :]
    return pairs


def answer(text: str, bot_names: Iterable[str] = ()) -> tuple[str, str]:
    """One message read as one value: (as typed, folded to ASCII forms), @mentions and surrounding
    spaces removed; a message wholly inside quotes (``"取消"``) is taken literally, without them."""
    raw, w = _clean(text, bot_names, slash=False)
    if len(w) >= 2 and w[0] in _OPEN_QUOTES and w[-1] in _CLOSE_QUOTES:
        inner = w[1:-1]
        if not any(q in inner for q in _CLOSE_QUOTES):
            return raw[1:-1], inner
    return raw, w


def is_skip(text: str, bot_names: Iterable[str] = ()) -> bool:
    """Is the message 跳过 / skip (any case, trailing punctuation ignored)?"""
    _, w = _clean(text, bot_names)
    return w.rstrip(_TRAILING).strip().lower() in SKIP_WORDS


def _command(name: CommandName, message: str, raw: str, w: str) -> Intent:
    if name == "help":
        return Help()
    if name in _NO_ARGS:
        if w:
            return Unknown(message, name, "unexpected text")
        return ListWorkflows() if name == "workflows" else Cancel()
    if name == "create":
        return _create(message, w)
    if name in ("todo", "mine"):
        page = 1
        if w:
            arg = w.rstrip(_TRAILING)
            if not _PAGE.fullmatch(arg) or not 0 < int(arg) <= MAX_PAGE:
                return Unknown(message, name, "bad page")
            page = int(arg)
        return ListPending(page) if name == "todo" else ListMine(page)
    if name == "show":
        return _show(message, w, raw)
    got = _ref(message, name, w)
    if isinstance(got, Unknown):
        return got
    ref, end = got
    free = raw[end:].lstrip(_TEXT_LEAD).strip()
    if name == "urge":
        return Urge(ref, free)
    if name == "comment":
        return Comment(ref, free) if free else Unknown(message, name, "missing text")
    if name == "withdraw":
        return Withdraw(ref, free)
    return Decide(ref, "agree" if name == "approve" else "reject", free)


def _show(message: str, w: str, raw: str) -> Intent:
    got = _ref(message, "show", w)
    if isinstance(got, Unknown):
        return got
    ref, end = got
    if w[end:].rstrip(_TRAILING):
        return Unknown(message, "show", "unexpected text")
    return Show(ref)


def _ref(message: str, name: CommandName, w: str) -> tuple[Ref, int] | Unknown:
    if not w:
        return Unknown(message, name, "missing ticket")
    m = _REF.match(w)
    if m is None:
        return Unknown(message, name, "bad ticket")
    if m["sn"] is not None:
        return m["sn"], m.end()
    number = int(m["id"])
    if number <= 0:
        return Unknown(message, name, "bad ticket")
    return number, m.end()


def _create(message: str, w: str) -> Intent:
    tokens = _lex(w)
    if tokens is None:
        return Unknown(message, "create", "unclosed quote")
    words: list[str] = []
    fields: dict[str, str] = {}
    for token, eq in tokens:
        if eq is None:
            if fields:
                return Unknown(message, "create", "unquoted space")
            words.append(token)
            continue
        key, value = token[:eq], token[eq + 1 :]
        if not _field_key(key):
            return Unknown(message, "create", "bad field")
        if key in fields:
            return Unknown(message, "create", "duplicate field")
        fields[key] = value
    query = " ".join(word for word in words if word)
    return Create(query, _frozen(fields))


def _lex(s: str) -> list[tuple[str, int | None]] | None:
    """Split on spaces, honouring quotes. Each token: (text, index of its first unquoted '=')."""
    tokens: list[tuple[str, int | None]] = []
    i, n = 0, len(s)
    while i < n:
        if s[i] == " ":
            i += 1
            continue
        buf: list[str] = []
        size = 0
        eq: int | None = None
        while i < n and s[i] != " ":
            ch = s[i]
            if ch in _OPEN_QUOTES:
                j = i + 1
                while j < n and s[j] not in _CLOSE_QUOTES:
                    j += 1
                if j >= n:
                    return None
                buf.append(s[i + 1 : j])
                size += j - i - 1
                i = j + 1
                continue
            if ch == "=" and eq is None:
                eq = size
            buf.append(ch)
            size += 1
            i += 1
        tokens.append(("".join(buf), eq))
    return tokens


def _closest(w: str) -> CommandName | None:
    """The command whose keyword looks most like the start of the message (difflib), if any."""
    head = w.split(" ", 1)[0].lower()[:32]
    if not head:
        return None
    best: CommandName | None = None
    best_ratio = 0.0
    matcher = difflib.SequenceMatcher(autojunk=False)
    for name, words in KEYWORDS.items():
        for word in words:
            if len(word) < 2:
                continue
            candidate = head[: len(word)] if _is_cjk(word[0]) else head
            matcher.set_seqs(candidate, word)
            ratio = matcher.ratio()
            if ratio > best_ratio:
                best, best_ratio = name, ratio
    return best if best_ratio >= 0.5 else None
