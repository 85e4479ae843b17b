"""The callback fuzz's WeCom cases (``/wecom/callback``): the outer request (`WeComOuter`: GET URL
verification and POST, the query and the body) and, correctly signed and encrypted, the XML
inside (`WeComInner`); their strategies and builders."""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from hypothesis import strategies as st

from bot.handlers import commands
from emulator.wecom import text_message_xml
from emulator.wecom_crypto import WeComCipher, signature
from tests.bot import test_wecom_chat as wc
from tests.fuzz.runner import Answer, Built, Fuzzer, Sent, may_create
from tests.fuzz.strategies import (
    BAD_EXTRA,
    CHAT_TEXT,
    CONTENT_TYPES,
    JUNK_TEXT,
    MAX_BODY,
    PARAM,
    SAFE_TEXT,
    Param,
    edited_keys,
    headers,
    raw_query,
)
from tests.fuzz.support import craft_ciphertext, layout
from tests.fuzz.world import USERNAMES, WECOM_CLICKERS, WECOM_SENDERS, World

# ---------------------------------------------------------------- WeCom

WeComBody = Literal[
    "good",
    "garbage",
    "not-xml",
    "truncated",
    "oversized",
    "wrong-shape",
    "encrypt-nested",
    "encrypt-junk",
    "encrypt-other-corp",
    "to-user-other",
    "dtd",
    "utf16",
    "empty",
]


@dataclass(frozen=True)
class WeComOuter:
    method: Literal["GET", "POST"]
    signature: Param
    timestamp: Param
    stale: bool  # a right-looking timestamp outside the replay window
    nonce: Param
    echostr: Param
    body: WeComBody
    junk: bytes
    cut: int
    content_type: str | None
    extra: str


def wecom_outer_cases() -> st.SearchStrategy[WeComOuter]:
    return st.builds(
        WeComOuter,
        method=st.sampled_from(["GET", "POST", "POST"]),
        signature=PARAM,
        timestamp=PARAM,
        stale=st.sampled_from([False, False, False, True]),
        nonce=PARAM,
        echostr=PARAM,
        body=st.sampled_from(["good", "good", *WeComBody.__args__]),  # type: ignore[attr-defined]
        junk=st.binary(max_size=80),
        cut=st.integers(0, 400),
        content_type=st.sampled_from(["text/xml", *CONTENT_TYPES]),
        extra=st.sampled_from(["", "", "a=1", "msg_signature", "=", "&&", "%", BAD_EXTRA]),
    )


def _envelope(encrypt: str, to_user: str = wc.CORP) -> str:
    return f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName><AgentID>1000002</AgentID><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"


def _wecom_text(fuzzer: Fuzzer, content: str = "帮助", sender: str = "Stranger") -> str:
    return text_message_xml(
        corp_id=wc.CORP,
        from_user=sender,
        content=content,
        msg_id=fuzzer.uid()[2:],
        agent_id=wc.AGENT,
        create_time=1,
    )


def build_wecom_outer(fuzzer: Fuzzer, case: WeComOuter) -> Built:
    cipher = WeComCipher(wc.AES_KEY)
    now = int(time.time())
    ts = str(now - 10_000 if case.stale else now)
    nonce = "n" + fuzzer.uid()
    message = _wecom_text(fuzzer)
    echo = "echo-" + fuzzer.uid()
    if case.method == "GET":
        encrypt = cipher.encrypt(echo, wc.CORP)
        body = b""
        body_ok = True
    else:
        encrypt = cipher.encrypt(message, wc.CORP)
        env = _envelope(encrypt).encode()
        body, body_ok = {
            "good": (env, True),
            "garbage": (case.junk, False),
            "not-xml": (b"Encrypt=" + encrypt.encode(), False),
            "truncated": (env[: min(case.cut, len(env) - 1)], False),
            "oversized": (env[:-6] + b" " * MAX_BODY + b"</xml>", False),
            "wrong-shape": (f"<Encrypt><xml>{encrypt}</xml></Encrypt>".encode(), False),
            "encrypt-nested": (f"<xml><Encrypt><v>{encrypt}</v></Encrypt></xml>".encode(), False),
            "encrypt-junk": (_envelope(case.junk.hex() + "!").encode(), False),
            "encrypt-other-corp": (_envelope(cipher.encrypt(message, "wwother")).encode(), False),
            "to-user-other": (_envelope(encrypt, "wwother").encode(), False),
            "dtd": (b'<!DOCTYPE xml [<!ENTITY e "x">]>' + env, False),
            "utf16": (env.decode().encode("utf-16"), False),
            "empty": (b"", False),
        }[case.body]
        if case.body == "encrypt-junk":
            encrypt = case.junk.hex() + "!"
        elif case.body == "encrypt-other-corp":
            found = re.search(rb"CDATA\[([^\]]+)\]\]></Encrypt>", body)
            assert found is not None
            encrypt = found.group(1).decode()
    sig = signature(wc.TOKEN, ts, nonce, encrypt)
    pairs = [
        ("msg_signature", case.signature, sig),
        ("timestamp", case.timestamp, ts),
        ("nonce", case.nonce, nonce),
    ]
    if case.method == "GET":
        pairs.append(("echostr", case.echostr, encrypt))
    # the first of repeated names wins: a wrong value after the right one is ignored
    valid = all(p.good for _, p, _ in pairs) and body_ok and not case.stale and case.extra != BAD_EXTRA
    query = raw_query(pairs, case.extra)

    def check_ack(answer: Answer) -> None:
        expected = echo if case.method == "GET" else ""
        assert answer.text == expected, f"acknowledged with {answer.text[:200]!r}, not {expected!r}"

    return Built(
        Sent(case.method, "/wecom/callback", query, headers(case.content_type), body),
        valid,
        payload=message if case.method == "POST" else None,
        check_ack=check_ack,
    )


@dataclass(frozen=True)
class XmlField:
    name: str
    value: str
    form: Literal["cdata", "escaped", "raw", "nested", "twice", "absent"] = "cdata"


@dataclass(frozen=True)
class WeComInner:
    good: tuple[XmlField, ...]  # a plausible message or event, every element as CDATA
    damage: tuple[XmlField, ...]  # elements replaced (or added): junk values, other forms
    mutation: Literal["none", "truncate", "junk", "root", "declaration", "dtd", "not-xml", "bom"]
    cut: int
    junk: str
    block: Literal[
        "normal", "other-corp", "bad-pad", "zero-pad", "long-length", "short-length", "not-utf8", "gbk"
    ]

    @property
    def fields(self) -> tuple[XmlField, ...]:
        out = list(self.good)
        for d in self.damage:
            at = next((i for i, f in enumerate(out) if f.name == d.name), None)
            if at is None:
                out.append(d)
            else:
                out[at] = d
        return tuple(out)


XML_NAMES = (
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Content",
    "MsgId",
    "AgentID",
    "Event",
    "EventKey",
    "TaskId",
    "ResponseCode",
    "ChangeType",
    "UserID",
    "ExternalUserID",
    "xml",
)
XML_DAMAGE = st.builds(
    XmlField,
    st.sampled_from(XML_NAMES),
    st.one_of(
        JUNK_TEXT,
        st.sampled_from(["", "wwother", "abc", "-1", "1e3", "9" * 30, "image", "TEXT", "event\n", "voice"]),
    ),
    st.sampled_from(["cdata", "cdata", "escaped", "raw", "nested", "twice", "absent"]),
)


def wecom_inner_cases(world: World) -> st.SearchStrategy[WeComInner]:
    def element(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[XmlField]:
        return st.builds(XmlField, st.just(name), values)

    head = (
        element("ToUserName", st.sampled_from([wc.CORP, wc.CORP, wc.CORP, ""])),
        element("FromUserName", st.sampled_from(WECOM_SENDERS + WECOM_CLICKERS)),
        element("CreateTime", st.just("{ID}")),
        element("AgentID", st.just(str(wc.AGENT))),
    )
    text = st.tuples(
        *head,
        element("MsgType", st.just("text")),
        element("Content", CHAT_TEXT),
        element("MsgId", st.just("{ID}")),
    )
    click = st.tuples(
        *head,
        element("MsgType", st.just("event")),
        element("Event", st.just("template_card_event")),
        element("EventKey", edited_keys(world.wecom_keys, world.ticket_id, world.state_id)),
        element("TaskId", st.sampled_from([world.wecom_task_id, "tb_1_1_uX"])),
        element("ResponseCode", st.just("rc-1")),
    )
    contact = st.tuples(
        *head,
        element("MsgType", st.just("event")),
        element("Event", st.just("change_external_contact")),
        element(
            "ChangeType",
            st.sampled_from(["add_external_contact", "del_follow_user", "edit_external_contact"]),
        ),
        element("UserID", st.sampled_from(WECOM_SENDERS)),
        element("ExternalUserID", st.sampled_from(["wmXXXX", "wo" + "x" * 200])),
    )
    other = st.tuples(
        *head,
        element("MsgType", st.sampled_from(["event", "image", "voice", "location"])),
        element(
            "Event",
            st.sampled_from(["enter_agent", "click", "view", "subscribe", "template_card_menu_event"]),
        ),
        element("EventKey", SAFE_TEXT),
        element("MsgId", st.just("{ID}")),
    )
    return st.builds(
        WeComInner,
        good=st.one_of(text, text, click, click, contact, other),
        damage=st.one_of(st.just(()), st.lists(XML_DAMAGE, min_size=1, max_size=3).map(tuple)),
        mutation=st.sampled_from(
            ["none"] * 12 + ["truncate", "junk", "root", "declaration", "dtd", "not-xml", "bom"]
        ),
        cut=st.integers(0, 300),
        junk=JUNK_TEXT,
        block=st.sampled_from(
            ["normal"] * 16
            + ["other-corp", "bad-pad", "zero-pad", "long-length", "short-length", "not-utf8", "gbk"]
        ),
    ).filter(lambda c: not _wecom_genuine(world, c))


def _value(fields: tuple[XmlField, ...], name: str) -> str | None:
    found = [f for f in fields if f.name == name and f.form in ("cdata", "escaped", "raw", "twice")]
    return found[0].value if found else None


def _wecom_genuine(world: World, case: WeComInner) -> bool:
    sender = _value(case.fields, "FromUserName") or ""
    key = _value(case.fields, "EventKey") or ""
    content = _value(case.fields, "Content") or ""
    username = USERNAMES.get(sender.strip().casefold(), "")
    return world.genuine(username, key.strip()) or (
        username == world.handler and isinstance(commands.parse(content), commands.Decide)
    )


def _xml_field(f: XmlField, ids: Callable[[], str]) -> str:
    value = f.value.replace("{ID}", ids()[2:])
    if f.form == "absent":
        return ""
    if f.form == "cdata":
        inner = "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"
    elif f.form == "escaped":
        inner = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    elif f.form == "raw":
        inner = value
    else:
        inner = f"<v>{value}</v>"
    element = f"<{f.name}>{inner}</{f.name}>"
    return element * 2 if f.form == "twice" else element


def build_wecom_inner(fuzzer: Fuzzer, case: WeComInner) -> Built:
    xml = "<xml>" + "".join(_xml_field(f, fuzzer.uid) for f in case.fields) + "</xml>"
    xml = {
        "none": xml,
        "truncate": xml[: min(case.cut, len(xml) - 1)],
        "junk": xml[: case.cut] + case.junk + xml[case.cut :],
        "root": xml.replace("<xml>", "<message>", 1).replace("</xml>", "</message>"),
        "declaration": '<?xml version="1.0" encoding="GBK"?>' + xml,
        "dtd": '<!DOCTYPE xml SYSTEM "file:///etc/hostname">' + xml,
        "not-xml": case.junk,
        "bom": "\ufeff" + xml,
    }[case.mutation]
    msg = xml.encode("utf-8", "surrogatepass")
    receive = wc.CORP.encode()
    if case.block == "normal":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg, receive))
    elif case.block == "other-corp":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg, b"wwother"))
    elif case.block == "bad-pad":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg, receive), pad=bytes([200]) * 7)
    elif case.block == "zero-pad":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg, receive), pad=b"\0" * 5)
    elif case.block == "long-length":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg, receive, length=len(msg) + 1000))
    elif case.block == "short-length":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg, receive, length=max(0, len(msg) - 3)))
    elif case.block == "not-utf8":
        encrypt = craft_ciphertext(wc.AES_KEY, layout(msg + b"\xff\xfe", receive))
    else:
        gbk = xml.encode("gbk", "replace")
        encrypt = craft_ciphertext(wc.AES_KEY, layout(gbk, receive))
        xml = gbk.decode("utf-8", "replace")  # what is stored, if it decodes (else it is refused)
    ts, nonce = str(int(time.time())), "n" + fuzzer.uid()
    query = "&".join(
        f"{k}={urllib.parse.quote(v, safe='')}"
        for k, v in (
            ("msg_signature", signature(wc.TOKEN, ts, nonce, encrypt)),
            ("timestamp", ts),
            ("nonce", nonce),
        )
    )
    sender = (_value(case.fields, "FromUserName") or "").strip()
    content = _value(case.fields, "Content") or ""
    return Built(
        Sent("POST", "/wecom/callback", query, headers("text/xml"), _envelope(encrypt).encode()),
        None,
        payload=xml,
        may_change=frozenset({"chat_draft", "delivery", "customer"}),
        may_create=may_create(fuzzer, "wecom", USERNAMES.get(sender.casefold(), ""), content),
    )
