"""WeCom callbacks (docs 90968, 90238) as pure functions over plain request values.

No aiohttp here: the route hands over the raw query string and the body bytes, so every rule is
tested with fixed vectors.

- `parse_query`: percent-decoding only. A literal '+' stays '+' (base64 in `echostr` and
  `msg_signature` values), unlike form decoding, which turns it into a space.
- `verify_url`: the GET handshake; returns the decrypted `echostr`, to be answered verbatim.
- `parse_post`: verify the signature over `Encrypt`, decrypt, parse the inner message or event.
- `parse_message`: the decrypted inner XML -> `InboundEvent` (also used to re-read an inbox row).

Both XML layers are parsed defensively: a body over the size limit, any DOCTYPE or ENTITY
declaration, or anything but UTF-8 is refused before the parser sees it, and the parser itself
refuses a DTD should one slip through; entities are never expanded.

Refusals are `CallbackRefused(status, reason)`: 403 for a bad signature, a message for another
corp id or a timestamp outside the replay window; 400 for everything malformed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import unquote
from xml.etree import ElementTree as ET

from bot.wecom.crypto import CallbackRefused, WeComCrypto

PLATFORM = "wecom"
MAX_BODY_BYTES = 64 * 1024
MAX_KEY_CHARS = 512  # longer dedupe keys keep a readable head and a hash of the whole
_DTD_RE = re.compile(r"<!\s*(doctype|entity)", re.IGNORECASE)
_QUERY_NAMES = ("msg_signature", "timestamp", "nonce")


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundEvent:
    """One WeCom message or event, decrypted. Absent fields are "" (0 for create_time)."""

    platform: str = PLATFORM
    dedupe_key: str
    msg_type: str
    event: str = ""
    from_user: str = ""
    create_time: int = 0
    content: str = ""
    msg_id: str = ""
    event_key: str = ""
    task_id: str = ""
    response_code: str = ""
    agent_id: str = ""
    change_type: str = ""  # change_external_contact: ChangeType, UserID (staff), ExternalUserID
    user_id: str = ""
    external_user_id: str = ""
    raw: str  # the decrypted inner XML, as stored in the inbox


def parse_query(raw_query: str) -> dict[str, str]:
    """Name -> value of a raw (still percent-encoded) query string; the first of repeated names wins.

    Only %XX sequences are decoded: '+' is a literal plus, never a space."""
    out: dict[str, str] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        try:
            out.setdefault(unquote(name, errors="strict"), unquote(value, errors="strict"))
        except UnicodeDecodeError:
            _refuse(400, "the query string is not percent-encoded UTF-8")
    return out


def _refuse(status: int, reason: str, msg_id: str = "") -> NoReturn:
    raise CallbackRefused(status, reason, msg_id=msg_id)


def _required(query: Mapping[str, str], names: tuple[str, ...]) -> list[str]:
    missing = [n for n in names if not query.get(n)]
    if missing:
        _refuse(400, f"query parameter missing: {', '.join(missing)}")
    return [query[n] for n in names]


def _check_replay(timestamp: str, now: float | None, replay_window: int) -> None:
    if replay_window <= 0 or now is None:
        return
    try:
        sent = int(timestamp)
    except ValueError:
        _refuse(400, "timestamp is not an integer")
    if abs(now - sent) > replay_window:
        _refuse(403, f"timestamp is more than {replay_window} s away from our clock")


def safe_xml(data: bytes | str, what: str, max_bytes: int = MAX_BODY_BYTES) -> ET.Element:
    """The root element of `data`; CallbackRefused(400) for oversized, non-UTF-8, DTD-carrying or
    malformed XML. Entities other than the five predefined ones are never expanded."""
    if len(data) > max_bytes:
        _refuse(400, f"{what} is larger than {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            _refuse(400, f"{what} is not UTF-8")
    else:
        text = data
    if _DTD_RE.search(text):
        _refuse(400, f"{what} carries a DOCTYPE or ENTITY declaration")
    # Defence in depth: a DTD the text check missed is refused by the parser itself.
    # S314: the DTD checks above and in _NoDtdTreeBuilder are what defusedxml would add here.
    parser: ET.XMLParser[ET.Element] = ET.XMLParser(target=_NoDtdTreeBuilder())  # noqa: S314
    try:
        parser.feed(text)
        root = parser.close()
    except ET.ParseError:
        _refuse(400, f"{what} is not well-formed XML")
    except ValueError:  # raised by _NoDtdTreeBuilder
        _refuse(400, f"{what} carries a DOCTYPE or ENTITY declaration")
    return root


class _NoDtdTreeBuilder(ET.TreeBuilder):
    def doctype(self, name: str, pubid: str | None, system: str | None) -> NoReturn:
        raise ValueError("DTDs are not allowed")


def _text(root: ET.Element, name: str, *, strip: bool = True) -> str:
    node = root.find(name)
    text = (node.text or "") if node is not None else ""
    return text.strip() if strip else text


def verify_url(
    crypto: WeComCrypto, query: Mapping[str, str], *, now: float | None = None, replay_window: int = 0
) -> str:
    """The plaintext of `echostr` of a signed URL-verification GET."""
    signature, timestamp, nonce, echostr = _required(query, (*_QUERY_NAMES, "echostr"))
    _check_replay(timestamp, now, replay_window)
    return crypto.verify_and_decrypt(signature, timestamp, nonce, echostr)


def parse_post(
    crypto: WeComCrypto,
    query: Mapping[str, str],
    body: bytes,
    corp_id: str,
    max_bytes: int = MAX_BODY_BYTES,
    *,
    now: float | None = None,
    replay_window: int = 0,
) -> InboundEvent:
    """Verify, decrypt and parse one callback POST."""
    signature, timestamp, nonce = _required(query, _QUERY_NAMES)
    outer = safe_xml(body, "the body", max_bytes)
    encrypt = _text(outer, "Encrypt")
    if not encrypt:
        _refuse(400, "Encrypt is missing")
    to_user = _text(outer, "ToUserName")
    crypto.verify(signature, timestamp, nonce, encrypt)
    if to_user and to_user != corp_id:
        _refuse(403, "ToUserName is not our CorpID")
    _check_replay(timestamp, now, replay_window)
    return parse_message(crypto.decrypt(encrypt), corp_id, max_bytes)


def _dedupe_key(parts: list[str]) -> str:
    key = ":".join(parts)
    if len(key) <= MAX_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: MAX_KEY_CHARS - 72]}:sha256:{digest}"


def dedupe_key_of(
    *,
    msg_type: str,
    msg_id: str,
    event: str,
    from_user: str,
    create_time: str,
    event_key: str,
    task_id: str,
    change: tuple[str, str, str] = ("", "", ""),
) -> str:
    """platforms.md: messages by MsgId; events by FromUserName + CreateTime (+ Event), and a
    template_card_event adds EventKey + TaskId so two clicks in one second don't collide. A
    change_external_contact event (FromUserName is always "sys") adds `change` = (ChangeType,
    UserID, ExternalUserID), so two customers added in one second are two events."""
    if msg_type != "event":
        return _dedupe_key(["msg", msg_id])
    parts = ["evt", from_user, create_time, event]
    if event == "template_card_event":
        parts += [event_key, task_id]
    elif event == "change_external_contact":
        parts += list(change)
    return _dedupe_key(parts)


def parse_message(plaintext: str, corp_id: str, max_bytes: int = MAX_BODY_BYTES) -> InboundEvent:
    """The decrypted inner XML of a message or event -> InboundEvent (CallbackRefused if unusable)."""
    root = safe_xml(plaintext, "the decrypted message", max_bytes)
    msg_id = _text(root, "MsgId")
    to_user = _text(root, "ToUserName")
    if to_user and to_user != corp_id:
        _refuse(403, "the message's ToUserName is not our CorpID", msg_id)
    msg_type = _text(root, "MsgType")
    if not msg_type:
        _refuse(400, "MsgType is missing", msg_id)
    event = _text(root, "Event")
    from_user = _text(root, "FromUserName")
    create_time = _text(root, "CreateTime")
    event_key = _text(root, "EventKey")
    task_id = _text(root, "TaskId")
    change = (_text(root, "ChangeType"), _text(root, "UserID"), _text(root, "ExternalUserID"))
    if msg_type == "event":
        missing = [
            n
            for n, v in (("FromUserName", from_user), ("CreateTime", create_time), ("Event", event))
            if not v
        ]
        if event == "template_card_event":
            missing += [n for n, v in (("EventKey", event_key), ("TaskId", task_id)) if not v]
        if missing:
            _refuse(400, f"event without {', '.join(missing)}")
    elif not msg_id:
        _refuse(400, "message without MsgId")
    if create_time and not create_time.isdigit():
        _refuse(400, "CreateTime is not an integer", msg_id)
    return InboundEvent(
        dedupe_key=dedupe_key_of(
            msg_type=msg_type,
            msg_id=msg_id,
            event=event,
            from_user=from_user,
            create_time=create_time,
            event_key=event_key,
            task_id=task_id,
            change=change,
        ),
        msg_type=msg_type,
        event=event,
        from_user=from_user,
        create_time=int(create_time) if create_time else 0,
        content=_text(root, "Content", strip=False),
        msg_id=msg_id,
        event_key=event_key,
        task_id=task_id,
        response_code=_text(root, "ResponseCode"),
        agent_id=_text(root, "AgentID"),
        change_type=change[0],
        user_id=change[1],
        external_user_id=change[2],
        raw=plaintext,
    )
