"""The callback fuzz's DingTalk robot cases (``/dingtalk/robot``): the outer request (`RobotOuter`:
the timestamp + sign headers, the body) and, validly signed, the message's JSON (`RobotInner`);
their strategies and builders."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from bot.handlers import commands
from tests.bot import test_dingtalk_cards as dt
from tests.fuzz.runner import Answer, Built, Fuzzer, Sent, may_create
from tests.fuzz.strategies import (
    CHAT_TEXT,
    CONTENT_TYPES,
    DROP,
    HUGE_TEXT,
    JSON_JUNK,
    JUNK_TEXT,
    Edit,
    JsonBody,
    SignedHeaders,
    apply,
    header_pairs,
    headers,
    json_body,
    signed_headers,
)
from tests.fuzz.world import DING_SENDERS, USERNAMES, World

# ---------------------------------------------------------------- DingTalk robot messages


def _robot_mac(ts: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"{ts.strip()}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@dataclass(frozen=True)
class RobotOuter:
    headers: SignedHeaders
    body: JsonBody
    junk: bytes
    cut: int
    content_type: str | None


def robot_outer_cases() -> st.SearchStrategy[RobotOuter]:
    return st.builds(
        RobotOuter,
        headers=signed_headers(),
        body=st.sampled_from(["good"] * 4 + list(JsonBody.__args__)),  # type: ignore[attr-defined]
        junk=st.binary(max_size=80),
        cut=st.integers(0, 300),
        content_type=st.sampled_from(["application/json", *CONTENT_TYPES]),
    )


def _robot_message(fuzzer: Fuzzer, text: str, sender: str) -> dict[str, Any]:
    body = fuzzer.p.dingtalk.emulator.robot_text_message(text, sender=sender, msg_id=fuzzer.uid())
    return body


def build_robot_outer(fuzzer: Fuzzer, case: RobotOuter) -> Built:
    message = json.dumps(_robot_message(fuzzer, "帮助", "outsider01"), ensure_ascii=False).encode()
    body, body_ok = json_body(case.body, message, case.junk, case.cut)
    sign, sign_ok = header_pairs(case.headers, ("timestamp", "sign"), _robot_mac, dt.APP_SECRET)
    return Built(
        Sent("POST", "/dingtalk/robot", "", headers(case.content_type, *sign), body),
        sign_ok and body_ok,
        payload=json.dumps({"kind": "robot", "body": message.decode()}, ensure_ascii=False),
        check_ack=_empty_json,
    )


def _empty_json(answer: Answer) -> None:
    assert answer.content_type == "application/json" and json.loads(answer.text) == {}, answer


ROBOT_KEYS = (
    "msgtype",
    "text",
    "content",
    "msgId",
    "createAt",
    "conversationType",
    "conversationId",
    "conversationTitle",
    "senderId",
    "senderStaffId",
    "senderNick",
    "senderCorpId",
    "chatbotCorpId",
    "chatbotUserId",
    "robotCode",
    "isInAtList",
    "atUsers",
    "sessionWebhook",
    "sessionWebhookExpiredTime",
)


@dataclass(frozen=True)
class RobotInner:
    text: str
    sender: str
    edits: tuple[Edit, ...]


def robot_inner_cases(world: World) -> st.SearchStrategy[RobotInner]:
    special = {
        "msgtype": st.sampled_from(["text", "richText", "picture", "file", "audio", "markdown", "", "TEXT"]),
        "conversationType": st.sampled_from(["1", "2", "3", ""]),
        "robotCode": st.sampled_from([dt.ROBOT, "dingother", ""]),
        "chatbotCorpId": st.sampled_from([dt.CORP, "dingother", ""]),
        "senderCorpId": st.sampled_from([dt.CORP, "dingother", ""]),
        "sessionWebhook": st.sampled_from(
            [
                "http://[::1",
                "http://127.0.0.1:1/x",
                "https://oapi.dingtalk.com/robot/sendBySession?session=x",
                "",
                "javascript:x",
            ]
        ),
        "sessionWebhookExpiredTime": st.sampled_from([0, -1, 2**63, "9" * 30, 4_102_444_800_000]),
        "createAt": st.sampled_from([0, -1, 2**64, "abc", "1" * 25]),
        "isInAtList": st.sampled_from([True, False, "true", "yes", 1]),
        "atUsers": st.sampled_from(
            [
                [],
                [{"dingtalkId": "x"}],
                [{"staffId": 3}],
                ["x"],
                {"a": 1},
                [{"dingtalkId": "$:LWCP_v1:$robot-dingrobot0001"}],
            ]
        ),
        "content": st.sampled_from(
            [
                {"richText": [{"text": "帮助"}, {"type": "picture"}, {"text": 3}]},
                {"downloadCode": 5},
                {"fileName": "a"},
                "帮助",
            ]
        ),
        "text": st.one_of(st.fixed_dictionaries({"content": JSON_JUNK}), JSON_JUNK),
    }

    def edit_for(key: str) -> st.SearchStrategy[Edit]:
        good = special.get(key, JUNK_TEXT)
        values = st.one_of(good, good, good, JUNK_TEXT, JSON_JUNK, HUGE_TEXT, st.just(DROP))
        return st.builds(Edit, st.just(key), values)

    keys = st.sampled_from([*special, *special, *ROBOT_KEYS, "junk"])
    edits = st.lists(keys.flatmap(edit_for), max_size=3)
    return st.builds(
        RobotInner, text=CHAT_TEXT, sender=st.sampled_from(DING_SENDERS), edits=edits.map(tuple)
    ).filter(lambda c: not _robot_genuine(world, c))


def _robot_genuine(world: World, case: RobotInner) -> bool:
    """The seeded ticket's handler saying 同意 / 驳回 (the message after its edits)."""
    final = apply({"senderStaffId": case.sender, "text": {"content": case.text}}, case.edits)
    staff = final.get("senderStaffId")
    return (
        isinstance(staff, str)
        and USERNAMES.get(staff, "") == world.handler
        and isinstance(commands.parse(commands_text(final)), commands.Decide)
    )


def build_robot_inner(fuzzer: Fuzzer, case: RobotInner) -> Built:
    body = apply(_robot_message(fuzzer, case.text, case.sender), case.edits)
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    sign, _ = header_pairs(
        SignedHeaders("good", "good", ""), ("timestamp", "sign"), _robot_mac, dt.APP_SECRET
    )
    staff = body.get("senderStaffId")
    text = commands_text(body)
    return Built(
        Sent("POST", "/dingtalk/robot", "", headers("application/json", *sign), raw),
        None,
        payload=json.dumps(
            {"kind": "robot", "body": raw.decode("utf-8", "surrogatepass")}, ensure_ascii=False
        ),
        check_ack=_empty_json,
        may_change=frozenset({"chat_draft"}),
        may_create=isinstance(staff, str) and may_create(fuzzer, "dingtalk", USERNAMES.get(staff, ""), text),
    )


def commands_text(body: Mapping[str, Any]) -> str:
    """The text a robot message may carry (text.content or a top-level content), for the create check."""
    text = body.get("text")
    if isinstance(text, dict) and isinstance(text.get("content"), str):
        return str(text["content"])
    content = body.get("content")
    return content if isinstance(content, str) else ""
