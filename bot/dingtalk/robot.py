"""DingTalk robot messages (internal app robot, HTTP mode) as pure functions over plain values.

shared/docs/platforms.md, "Robot messages":

- `verify_robot_sign`: headers `timestamp` (ms) and `sign` = base64(HMAC-SHA256(key=appSecret,
  msg=timestamp + "\\n" + appSecret)), compared in constant time; a timestamp more than one hour
  from our clock is refused. The caller passes `now_ms`: no clock is read here.
- `parse_robot_message`: the JSON body -> `RobotMessage`. The sign does not cover the body (and a
  captured header pair stays valid for an hour), so the body is checked too: `robotCode` must be
  ours and, with `corp_id`, `chatbotCorpId` and `senderCorpId` must name our corp. Dedupe on
  `msg:<msgId>`.

Text: `text.content`, or a top-level `content` string (both occur); a `richText` message gives the
concatenation of its text parts; picture / audio / video / file messages give "" and their
`downloadCode`; an unknown `msgtype` is parsed with "" so the caller can answer helpfully. In a
group the leading @mention of the robot is removed (see `strip_bot_mention`).

Refusals are `CallbackRefused(status, reason)`: 400 for missing or malformed input, 403 for a
wrong sign, an expired timestamp or a message for another robot or corp. Nothing is logged here,
and no reason ever carries a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from bot.dingtalk.events import (
    MAX_BODY_BYTES,
    PLATFORM,
    bounded_key,
    header_value,
    load_json_object,
    opt_str,
    refuse,
)

SIGN_WINDOW_MS = 60 * 60 * 1000  # "reject if more than 1 hour off"
KNOWN_MSG_TYPES = frozenset({"text", "richText", "picture", "audio", "video", "file"})
SINGLE_CHAT = "1"
GROUP_CHAT = "2"
_LEADING_MENTION_RE = re.compile(r"@\S+\s*")


def _mac(timestamp: str, app_secret: str) -> bytes:
    return hmac.new(app_secret.encode(), f"{timestamp}\n{app_secret}".encode(), hashlib.sha256).digest()


def robot_sign(timestamp: str, app_secret: str) -> str:
    """base64(HMAC-SHA256(key=appSecret, msg=timestamp + "\\n" + appSecret))."""
    return base64.b64encode(_mac(timestamp, app_secret)).decode()


def verify_robot_sign(
    headers: Mapping[str, str], app_secret: str, now_ms: int, *, window_ms: int = SIGN_WINDOW_MS
) -> None:
    """Check the `timestamp` / `sign` headers of a robot message POST; CallbackRefused if not good.

    400: a header is missing or the timestamp is not an integer; 403: the sign does not match
    (a sign that is not base64 included) or the timestamp is more than `window_ms` away from
    `now_ms`, in either direction."""
    timestamp = header_value(headers, "timestamp")
    sign = header_value(headers, "sign")
    missing = [n for n, v in (("timestamp", timestamp), ("sign", sign)) if not v]
    if missing:
        refuse(400, f"header missing: {', '.join(missing)}")
    if not timestamp.isascii() or not timestamp.isdigit():
        refuse(400, "the timestamp header is not an integer (ms)")
    expected = _mac(timestamp, app_secret)
    try:
        given = base64.b64decode(sign, validate=True)
    except (binascii.Error, ValueError):
        given = b""
    if not hmac.compare_digest(expected, given):
        refuse(403, "sign does not match")
    if abs(now_ms - int(timestamp)) > window_ms:
        refuse(403, f"timestamp is more than {window_ms // 1000} s away from our clock")


@dataclass(frozen=True, slots=True)
class AtUser:
    """One entry of `atUsers`: the DingTalk-internal id and, for members of the robot's corp,
    the staff id (userId)."""

    dingtalk_id: str
    staff_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RobotMessage:
    """One message to our robot. Absent strings are "", absent times 0."""

    platform: str = PLATFORM
    dedupe_key: str  # msg:<msgId>
    msg_id: str
    msg_type: str  # as sent: text, richText, picture, audio, video, file, or one we do not know
    text: str  # see the module doc; "" for media and unknown types
    create_at: int = 0  # ms epoch
    conversation_type: str = ""  # "1" single chat, "2" group
    conversation_id: str = ""
    conversation_title: str = ""
    sender_id: str = ""  # DingTalk-internal sender id
    sender_staff_id: str = ""  # the sender's userId in its corp; "" for outsiders
    sender_nick: str = ""
    sender_corp_id: str = ""
    chatbot_corp_id: str = ""
    chatbot_user_id: str = ""
    robot_code: str = ""
    is_in_at_list: bool = False
    at_users: tuple[AtUser, ...] = ()
    session_webhook: str = ""  # reply URL (text / markdown only, no interactive cards)
    session_webhook_expired_time: int = 0  # ms epoch
    download_code: str = ""  # media messages: content.downloadCode
    file_name: str = ""  # file messages: content.fileName
    raw: str  # the body, as stored in the inbox

    @property
    def is_group(self) -> bool:
        return self.conversation_type == GROUP_CHAT

    @property
    def is_known_type(self) -> bool:
        return self.msg_type in KNOWN_MSG_TYPES

    def can_reply_by_webhook(self, now_ms: int) -> bool:
        """Whether `session_webhook` is there and not yet expired at `now_ms`."""
        return bool(self.session_webhook) and now_ms < self.session_webhook_expired_time


def _ms(obj: Mapping[str, Any], name: str, msg_id: str) -> int:
    value = obj.get(name)
    if value is None or value == "":
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    refuse(400, f"{name} is not a time in ms", msg_id)


def _bool(obj: Mapping[str, Any], name: str, msg_id: str) -> bool:
    value = obj.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    refuse(400, f"{name} is not a boolean", msg_id)


def _at_users(obj: Mapping[str, Any], msg_id: str) -> tuple[AtUser, ...]:
    value = obj.get("atUsers")
    if value is None:
        return ()
    if not isinstance(value, list):
        refuse(400, "atUsers is not a list", msg_id)
    users: list[AtUser] = []
    for item in value:
        if not isinstance(item, dict):
            refuse(400, "atUsers holds something that is not an object", msg_id)
        users.append(
            AtUser(
                dingtalk_id=opt_str(item, "dingtalkId", what="atUsers[].", msg_id=msg_id),
                staff_id=opt_str(item, "staffId", what="atUsers[].", msg_id=msg_id),
            )
        )
    return tuple(users)


def _content_object(body: Mapping[str, Any]) -> Mapping[str, Any]:
    content = body.get("content")
    return content if isinstance(content, dict) else {}


def _plain_text(body: Mapping[str, Any]) -> str:
    text = body.get("text")
    if isinstance(text, dict) and isinstance(text.get("content"), str):
        return str(text["content"])
    content = body.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, dict) and isinstance(content.get("content"), str):
        return str(content["content"])
    return ""


def _rich_text(body: Mapping[str, Any]) -> str:
    parts = _content_object(body).get("richText")
    if not isinstance(parts, list):
        return ""
    return "".join(
        p["text"]
        for p in parts
        if isinstance(p, dict) and isinstance(p.get("text"), str) and p.get("type", "text") == "text"
    )


def strip_bot_mention(text: str, *, bot_names: Collection[str] = (), only_bot_mentioned: bool = False) -> str:
    """`text` of a group message without its leading whitespace and leading @mention of the robot.

    DingTalk usually removes the robot's mention itself and leaves the space after it; when the
    text still starts with one, it is removed if it is `@<name>` for one of `bot_names` (longest
    first, followed by whitespace or the end), or, with no name matching, if the robot is the only
    user mentioned (`only_bot_mentioned`), in which case a leading `@word` can only be the robot.
    A leading mention of someone else is kept."""
    rest = text.lstrip()
    for name in sorted((n for n in bot_names if n), key=len, reverse=True):
        mention = "@" + name
        if rest.startswith(mention) and (len(rest) == len(mention) or rest[len(mention)].isspace()):
            return rest[len(mention) :].lstrip()
    if only_bot_mentioned:
        m = _LEADING_MENTION_RE.match(rest)
        if m is not None:
            return rest[m.end() :]
    return rest


def parse_robot_message(
    body: bytes,
    *,
    robot_code: str,
    corp_id: str | None = None,
    max_bytes: int = MAX_BODY_BYTES,
    bot_names: Collection[str] = (),
) -> RobotMessage:
    """The JSON body of a robot message POST -> RobotMessage (CallbackRefused if unusable).

    `bot_names`: the robot's display names, to remove `@<name>` from the head of a group message."""
    data = load_json_object(body, "the body", max_bytes)
    msg_id = opt_str(data, "msgId")
    got_robot = opt_str(data, "robotCode", msg_id=msg_id)
    if not got_robot or got_robot != robot_code:
        refuse(403, "the message is for another robot (robotCode)", msg_id)
    chatbot_corp = opt_str(data, "chatbotCorpId", msg_id=msg_id)
    sender_corp = opt_str(data, "senderCorpId", msg_id=msg_id)
    if corp_id is not None:
        if chatbot_corp != corp_id:
            refuse(403, "the message is for a robot of another corp (chatbotCorpId)", msg_id)
        if sender_corp and sender_corp != corp_id:
            refuse(403, "the sender is from another corp (senderCorpId)", msg_id)
    if not msg_id:
        refuse(400, "message without msgId")
    msg_type = opt_str(data, "msgtype", "msgType", msg_id=msg_id)
    if not msg_type:
        refuse(400, "message without msgtype", msg_id)
    conversation_type = opt_str(data, "conversationType", msg_id=msg_id)
    chatbot_user_id = opt_str(data, "chatbotUserId", msg_id=msg_id)
    is_in_at_list = _bool(data, "isInAtList", msg_id)
    at_users = _at_users(data, msg_id)
    if msg_type == "text":
        text = _plain_text(data)
    elif msg_type == "richText":
        text = _rich_text(data)
    else:
        text = ""
    if conversation_type == GROUP_CHAT and text:
        others = [u for u in at_users if not chatbot_user_id or u.dingtalk_id != chatbot_user_id]
        text = strip_bot_mention(text, bot_names=bot_names, only_bot_mentioned=is_in_at_list and not others)
    content = _content_object(data)
    return RobotMessage(
        dedupe_key=bounded_key(["msg", msg_id]),
        msg_id=msg_id,
        msg_type=msg_type,
        text=text,
        create_at=_ms(data, "createAt", msg_id),
        conversation_type=conversation_type,
        conversation_id=opt_str(data, "conversationId", msg_id=msg_id),
        conversation_title=opt_str(data, "conversationTitle", msg_id=msg_id),
        sender_id=opt_str(data, "senderId", msg_id=msg_id),
        sender_staff_id=opt_str(data, "senderStaffId", msg_id=msg_id),
        sender_nick=opt_str(data, "senderNick", msg_id=msg_id),
        sender_corp_id=sender_corp,
        chatbot_corp_id=chatbot_corp,
        chatbot_user_id=chatbot_user_id,
        robot_code=got_robot,
        is_in_at_list=is_in_at_list,
        at_users=at_users,
        session_webhook=opt_str(data, "sessionWebhook", msg_id=msg_id),
        session_webhook_expired_time=_ms(data, "sessionWebhookExpiredTime", msg_id),
        download_code=opt_str(content, "downloadCode", "pictureDownloadCode", what="content.", msg_id=msg_id)
        if msg_type in ("picture", "audio", "video", "file")
        else "",
        file_name=opt_str(content, "fileName", what="content.", msg_id=msg_id) if msg_type == "file" else "",
        raw=body.decode("utf-8"),
    )
