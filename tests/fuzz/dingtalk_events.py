"""The callback fuzz's DingTalk event subscription cases (``/dingtalk/events``): the outer request
(`EventOuter`: the signed query, the ``{"encrypt"}`` body) and, correctly signed and encrypted,
the event inside (`EventInner`); their strategies and builders."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import strategies as st

from emulator.dingtalk import open_event_reply
from emulator.wecom_crypto import signature
from tests.bot import test_dingtalk_cards as dt
from tests.fuzz.runner import Answer, Built, Fuzzer, Sent
from tests.fuzz.strategies import (
    BAD_EXTRA,
    CONTENT_TYPES,
    DROP,
    HUGE_TEXT,
    JSON_JUNK,
    JUNK_TEXT,
    MAX_BODY,
    PARAM,
    Edit,
    Param,
    apply,
    headers,
    ms,
    raw_query,
)
from tests.fuzz.support import DING_AES, DING_OWNER, DING_TOKEN, craft_ciphertext, layout
from tests.fuzz.world import DING_SENDERS

# ---------------------------------------------------------------- DingTalk event subscription

EventBody = Literal[
    "good",
    "check-url",
    "garbage",
    "not-utf8",
    "not-object",
    "encrypt-number",
    "encrypt-missing",
    "encrypt-junk",
    "truncated",
    "oversized",
    "deep",
    "nan",
    "surrogate",
    "other-owner",
]


@dataclass(frozen=True)
class EventOuter:
    camel: bool  # msg_signature + timeStamp instead of signature + timestamp
    signature: Param
    timestamp: Param
    nonce: Param
    body: EventBody
    junk: bytes
    cut: int
    content_type: str | None
    extra: str


def event_outer_cases() -> st.SearchStrategy[EventOuter]:
    return st.builds(
        EventOuter,
        camel=st.booleans(),
        signature=PARAM,
        timestamp=PARAM,
        nonce=PARAM,
        body=st.sampled_from(["good", "good", "check-url", *EventBody.__args__]),  # type: ignore[attr-defined]
        junk=st.binary(max_size=80),
        cut=st.integers(0, 200),
        content_type=st.sampled_from(["application/json", *CONTENT_TYPES]),
        extra=st.sampled_from(["", "", "signature=0", "timeStamp=", "=", "&&", "%", BAD_EXTRA]),
    )


def _event_reply_check(answer: Answer) -> None:
    reply = json.loads(answer.text)
    plain = open_event_reply(reply, token=DING_TOKEN, aes_key=DING_AES, owner_key=DING_OWNER)
    assert plain == "success", plain


def _event_query(
    camel: bool, sig: tuple[Param, str], ts: tuple[Param, str], nonce: tuple[Param, str], extra: str
) -> str:
    names = ("msg_signature", "timeStamp") if camel else ("signature", "timestamp")
    return raw_query([(names[0], *sig), (names[1], *ts), ("nonce", *nonce)], extra)


def build_event_outer(fuzzer: Fuzzer, case: EventOuter) -> Built:
    cipher_key = DING_AES
    event = {
        "EventType": "user_modify_org",
        "EventId": fuzzer.uid(),
        "CorpId": dt.CORP,
        "UserId": ["staff0003"],
    }
    if case.body == "check-url":
        event = {"EventType": "check_url"}
    plain = json.dumps(event, separators=(",", ":"))
    encrypt = craft_ciphertext(cipher_key, layout(plain.encode(), DING_OWNER.encode()))
    good = json.dumps({"encrypt": encrypt}).encode()
    body, body_ok = {
        "good": (good, True),
        "check-url": (good, True),
        "garbage": (case.junk, False),
        "not-utf8": (good.decode().encode("utf-16"), False),
        "not-object": (json.dumps([encrypt]).encode(), False),
        "encrypt-number": (b'{"encrypt": 12345}', False),
        "encrypt-missing": (b'{"Encrypt": "' + encrypt.encode() + b'"}', False),
        "encrypt-junk": (json.dumps({"encrypt": case.junk.hex() + "=="}).encode(), False),
        "truncated": (good[: min(case.cut, len(good) - 1)], False),
        "oversized": (json.dumps({"encrypt": encrypt, "pad": "x" * MAX_BODY}).encode(), False),
        "deep": (b'{"encrypt": ' + b"[" * 5000 + b"]" * 5000 + b"}", False),
        "nan": (b'{"encrypt": NaN}', False),
        "surrogate": (b'{"encrypt": "\\udc00"}', False),
        "other-owner": (
            json.dumps(
                {"encrypt": craft_ciphertext(cipher_key, layout(plain.encode(), b"dingother"))}
            ).encode(),
            False,
        ),
    }[case.body]
    sign_over = json.loads(body)["encrypt"] if case.body in ("encrypt-junk", "other-owner") else encrypt
    ts, nonce = str(ms()), "n" + fuzzer.uid()
    sig = signature(DING_TOKEN, ts, nonce, sign_over)
    query = _event_query(
        case.camel, (case.signature, sig), (case.timestamp, ts), (case.nonce, nonce), case.extra
    )
    shadowed_ = case.extra == BAD_EXTRA
    # with both spellings, `signature` is read before `msg_signature`
    shadowed = case.extra.startswith("signature=") and case.camel
    valid = case.signature.good and case.timestamp.good and case.nonce.good and body_ok
    valid = valid and not shadowed and not shadowed_
    return Built(
        Sent("POST", "/dingtalk/events", query, headers(case.content_type), body),
        valid,
        payload=None if case.body == "check-url" else json.dumps({"kind": "event", "body": plain}),
        check_ack=_event_reply_check,
    )


@dataclass(frozen=True)
class EventInner:
    event: Mapping[str, Any] | None  # a plausible decrypted JSON object (None: `text` instead)
    damage: tuple[Edit, ...]  # keys replaced, added or dropped
    text: str
    block: Literal["normal", "other-owner", "bad-pad", "short", "long-length", "not-utf8", "no-owner"]


EVENT_KEYS = (
    "EventType",
    "eventType",
    "EventId",
    "eventId",
    "CorpId",
    "corpId",
    "TimeStamp",
    "UserId",
    "junk",
)


def event_inner_cases() -> st.SearchStrategy[EventInner]:
    types = st.sampled_from(
        ["user_modify_org", "check_url", "bpms_task_change", "chat_update_title", "x", "", "CHECK_URL"]
    )
    event = st.fixed_dictionaries(
        {"EventType": types, "EventId": st.just("{ID}"), "CorpId": st.sampled_from([dt.CORP, dt.CORP, ""])},
        optional={
            "TimeStamp": st.just("{ID}"),
            "UserId": st.lists(st.sampled_from(DING_SENDERS), max_size=3),
        },
    )
    damage = st.builds(
        Edit,
        st.sampled_from(EVENT_KEYS),
        st.one_of(JSON_JUNK, JUNK_TEXT, HUGE_TEXT, st.sampled_from([DROP, DROP, "dingother", "check_url"])),
    )
    return st.builds(
        EventInner,
        event=st.one_of(event, event, event, event, st.none()),
        damage=st.one_of(st.just(()), st.lists(damage, min_size=1, max_size=3).map(tuple)),
        text=st.one_of(
            JUNK_TEXT,
            st.just('{"EventType": "x"'),
            st.just("[1, 2]"),
            st.just('{"EventType": "x", "a": ' + "[" * 3000 + "]" * 3000 + "}"),
        ),
        block=st.sampled_from(
            ["normal"] * 16 + ["other-owner", "bad-pad", "short", "long-length", "not-utf8", "no-owner"]
        ),
    )


def _fill_ids(value: Any, ids: Callable[[], str]) -> Any:
    if value == "{ID}":
        return ids()
    if isinstance(value, dict):
        return {k: _fill_ids(v, ids) for k, v in value.items()}
    return value


def build_event_inner(fuzzer: Fuzzer, case: EventInner) -> Built:
    plain = (
        json.dumps(_fill_ids(apply(dict(case.event), case.damage), fuzzer.uid), ensure_ascii=False)
        if case.event is not None
        else case.text
    )
    msg = plain.encode("utf-8", "surrogatepass")
    owner = DING_OWNER.encode()
    block = {
        "normal": lambda: layout(msg, owner),
        "other-owner": lambda: layout(msg, b"dingother"),
        "bad-pad": lambda: layout(msg, owner),
        "short": lambda: b"r" * 17,
        "long-length": lambda: layout(msg, owner, length=len(msg) + 64),
        "not-utf8": lambda: layout(b"\xc3\x28" + msg, owner),
        "no-owner": lambda: layout(msg, b""),
    }[case.block]()
    encrypt = craft_ciphertext(DING_AES, block, pad=bytes([33]) * 33 if case.block == "bad-pad" else None)
    ts, nonce = str(ms()), "n" + fuzzer.uid()
    sig = signature(DING_TOKEN, ts, nonce, encrypt)
    good = Param("good")
    query = _event_query(False, (good, sig), (good, ts), (good, nonce), "")
    return Built(
        Sent(
            "POST",
            "/dingtalk/events",
            query,
            headers("application/json"),
            json.dumps({"encrypt": encrypt}).encode(),
        ),
        None,
        payload=json.dumps({"kind": "event", "body": plain}, ensure_ascii=False),
        check_ack=_event_reply_check,
    )
