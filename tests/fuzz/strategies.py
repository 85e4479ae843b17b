"""Strategy pieces the callback fuzz's endpoints share: junk, chat and huge texts, JSON junk,
content types, query parameters right or wrong in every way (`Param`, `raw_query`), button keys
edited to other tickets and states (`edited_keys`), edits of a JSON object (`Edit`, `apply`), and
the DingTalk robot's and card callback's signature headers (`SignedHeaders`, `header_pairs`) and
JSON bodies (`json_body`)."""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import strategies as st

# ---------------------------------------------------------------- strategies: shared pieces

MAX_BODY = 64 * 1024
NASTY = (
    "",
    " ",
    "\x00",
    "\t\n",
    "]]>",
    "<![CDATA[",
    "&amp;",
    "&lol;",
    "<x/>",
    "%FF",
    "%",
    "+",
    "=",
    "&",
    "#",
    "😀",
    "中文",
    "\u202e",
    "\ufeff",
    "\u0663\u0661",  # Arabic-Indic digits: isdigit() but not ASCII
    "null",
    "[]",
    "{}",
    "NaN",
    "1e400",
    "-1",
    "0",
    "18446744073709551616",
    "9" * 40,
    "true",
    "a" * 600,
    "http://[::1",
)
JUNK_TEXT = st.one_of(st.text(max_size=40), st.sampled_from(NASTY))
SAFE_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40)  # fits in XML
HUGE_TEXT = st.sampled_from([2_000, 20_000, 40_000]).map(lambda n: "长" * (n // 3))
VERBS = (
    "发起",
    "新建",
    "create",
    "同意",
    "approve",
    "驳回",
    "撤回",
    "评论",
    "催办",
    "查看",
    "待办",
    "帮助",
    "取消",
    "#",
)
COMMANDISH = st.tuples(st.sampled_from(VERBS), st.one_of(st.integers(-2, 5).map(str), SAFE_TEXT)).map(
    " ".join
)
CHAT_TEXT = st.one_of(
    SAFE_TEXT, COMMANDISH, HUGE_TEXT, st.sampled_from(["发起 请假申请", "帮助", "]]>", "&lol;"])
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` three times in four, else `bad`."""
    return st.one_of(good, good, good, bad)


JSON_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), JUNK_TEXT
)
JSON_JUNK = st.recursive(
    JSON_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
CONTENT_TYPES = (
    None,
    "application/json",
    "text/xml",
    "text/plain; charset=gbk",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
)

BAD_EXTRA = "x=%E4%B8"  # an extra pair that is not percent-encoded UTF-8: the whole query is refused
ParamKind = Literal[
    "good", "absent", "empty", "junk", "raw", "huge", "not-utf8", "twice-good-first", "twice-junk-first"
]
PARAM_KINDS: tuple[ParamKind, ...] = (
    "absent",
    "empty",
    "junk",
    "raw",
    "huge",
    "not-utf8",
    "twice-good-first",
    "twice-junk-first",
)


@dataclass(frozen=True)
class Param:
    kind: ParamKind
    junk: str = ""

    @property
    def good(self) -> bool:
        return self.kind in ("good", "twice-good-first")

    def values(self, good: str) -> list[str]:
        """The encoded value(s) on the wire for a parameter whose right value is `good`."""
        quote = urllib.parse.quote
        junk = quote(self.junk, safe="") if self.junk != good else quote(self.junk + "x", safe="")
        return {
            "good": [quote(good, safe="")],
            "absent": [],
            "empty": [""],
            "junk": [junk],
            "raw": [re.sub(r"[^!-~]|[&#]", "", self.junk) or "%"],  # e.g. a '%' or '+' sent as is
            "huge": [quote("Z" * 4000, safe="")],
            "not-utf8": ["%FF%FE" + junk],
            "twice-good-first": [quote(good, safe=""), junk],
            "twice-junk-first": [junk, quote(good, safe="")],
        }[self.kind]


WRONG_PARAM = st.builds(Param, st.sampled_from(PARAM_KINDS), JUNK_TEXT)
PARAM = st.one_of(st.just(Param("good")), st.just(Param("good")), st.just(Param("good")), WRONG_PARAM)
"""A query parameter: mostly right, else any of the wrong kinds."""


def raw_query(pairs: list[tuple[str, Param, str]], extra: str = "") -> str:
    """`name=value` pairs (each Param's values for its right value), then `extra` junk."""
    parts = [f"{name}={value}" for name, param, good in pairs for value in param.values(good)]
    if extra:
        parts.append(extra)
    return "&".join(parts)


def headers(content_type: str | None, *more: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return ((("Content-Type", content_type),) if content_type else ()) + tuple(more)


def ms() -> int:
    return int(time.time() * 1000)


def edited_keys(keys: tuple[str, ...], ticket_id: int, state_id: int) -> st.SearchStrategy[str]:
    """The real button keys, and keys edited to other tickets, states, transitions and kinds."""
    real = st.sampled_from(keys)

    def edit(key: str, part: int, value: str) -> str:
        pieces = key.split(":")  # t:<ticket>:s:<state>:a:<kind>:x:<transition>:n:<nonce>
        pieces[part] = value
        return ":".join(pieces)

    return st.one_of(
        real,
        st.builds(edit, real, st.sampled_from([1, 3, 7]), st.integers(0, 2**40).map(str)),
        st.builds(edit, real, st.just(1), st.sampled_from([ticket_id + 1, ticket_id + 1000, 0, -1]).map(str)),
        st.builds(edit, real, st.just(3), st.sampled_from([state_id + 1, 1, 999]).map(str)),
        st.builds(
            edit, real, st.just(5), st.sampled_from(["accept", "add_node_end", "close", "comment", "x"])
        ),
        st.builds(edit, real, st.sampled_from([0, 9]), JUNK_TEXT),
    )


# ---------------------------------------------------------------- JSON edits (events, robot, card)


@dataclass(frozen=True)
class Edit:
    key: str
    value: Any  # DROP removes the key
    nested: str = ""  # set inside this object instead of the top level


DROP = "<drop>"


def apply(body: dict[str, Any], edits: tuple[Edit, ...]) -> dict[str, Any]:
    out = dict(body)
    for e in edits:
        target = out
        if e.nested:
            inner = out.get(e.nested)
            target = dict(inner) if isinstance(inner, dict) else {}
            out[e.nested] = target
        if e.value == DROP:
            target.pop(e.key, None)
        else:
            target[e.key] = e.value
    return out


# ---------------------------------------------------------------- DingTalk signed requests (robot, card)

HeaderKind = Literal["good", "absent", "empty", "junk", "non-ascii-digits", "stale", "future", "padded"]
HEADER_KINDS: tuple[HeaderKind, ...] = (
    "absent",
    "empty",
    "junk",
    "non-ascii-digits",
    "stale",
    "future",
    "padded",
)


@dataclass(frozen=True)
class SignedHeaders:
    timestamp: HeaderKind
    sign: Literal["good", "absent", "empty", "junk", "not-base64", "other-secret", "lower"]
    junk: str


def signed_headers() -> st.SearchStrategy[SignedHeaders]:
    return st.builds(
        SignedHeaders,
        timestamp=st.sampled_from(["good"] * 5 + list(HEADER_KINDS)),
        sign=st.sampled_from(
            ["good"] * 5 + ["absent", "empty", "junk", "not-base64", "other-secret", "lower"]
        ),
        junk=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    )


def header_pairs(
    h: SignedHeaders, names: tuple[str, str], mac: Callable[[str, str], str], secret: str
) -> tuple[tuple[tuple[str, str], ...], bool]:
    """The two signature headers (timestamp, sign) for `h`, and whether they are right."""
    now = ms()
    ts = {
        "good": str(now),
        "absent": "",
        "empty": "",
        "junk": h.junk or "x",
        "non-ascii-digits": "\u0661\u0662\u0663",
        "stale": str(now - 2 * 3_600_000),
        "future": str(now + 2 * 3_600_000),
        "padded": f" {now} ",
    }[h.timestamp]
    good_sign = mac(ts if ts.strip().isascii() else "0", secret)
    sign = {
        "good": good_sign,
        "absent": "",
        "empty": "",
        "junk": h.junk or "x",
        "not-base64": "!!" + good_sign,
        "other-secret": mac(ts, secret + "x"),
        "lower": good_sign.lower(),
    }[h.sign]
    out = []
    if h.timestamp != "absent":
        out.append((names[0], ts))
    if h.sign != "absent":
        out.append((names[1], sign))
    ok = h.timestamp in ("good", "padded") and (h.sign == "good" or (h.sign == "lower" and sign == good_sign))
    # non-ASCII header values go out as UTF-8 bytes
    return tuple(out), ok


JsonBody = Literal[
    "good", "garbage", "not-utf8", "truncated", "oversized", "array", "empty", "deep", "surrogate"
]


def json_body(kind: JsonBody, good: bytes, junk: bytes, cut: int) -> tuple[bytes, bool]:
    return {
        "good": (good, True),
        "garbage": (junk, False),
        "not-utf8": (good.decode().encode("utf-16"), False),
        "truncated": (good[: min(cut, len(good) - 1)], False),
        "oversized": (good[:-1] + b', "pad": "' + b"x" * MAX_BODY + b'"}', False),
        "array": (b"[" + good + b"]", False),
        "empty": (b"", False),
        "deep": (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", False),
        "surrogate": (good[:-1] + b', "msgId": "\\ud800"}', False),
    }[kind]
