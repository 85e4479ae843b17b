"""DingTalk HTTP event subscription (事件订阅, HTTP push) as pure functions over plain request values.

No aiohttp here: the route hands over the raw query string and the body bytes, so every rule is
tested with fixed vectors (shared/docs/platforms.md, "Event subscription over HTTP").

- `parse_query`: percent-decoding only. A literal '+' stays '+' (base64 in `signature` values and
  in `encrypt`), unlike form decoding, which turns it into a space.
- `parse_event`: `POST <url>?signature|msg_signature=..&timestamp|timeStamp=..&nonce=..` with the
  body `{"encrypt": ".."}`: check the signature (403), decrypt, check the owner key `$key` (403),
  parse the decrypted JSON (PascalCase keys: `EventType`, `TimeStamp`, `CorpId`, ...).
- `parse_event_plaintext`: the decrypted JSON -> `DingTalkEvent` (also used to re-read an inbox row).
- `reply_success`: the HTTP 200 JSON DingTalk expects after every push, `check_url` included:
  `{"msg_signature", "timeStamp", "nonce", "encrypt"}` where `encrypt` is "success" encrypted.

The query timestamp is an opaque string: it is signed, never parsed, so there is no replay
window here; a re-pushed or replayed event is dropped by its dedupe key (see `event_dedupe_key`).

Also home of the small wire helpers the other DingTalk parsers share (`load_json_object`,
`header_value`, `bounded_key`), so that `robot` and `card_callback` refuse malformed JSON with the
same reasons. Refusals are `CallbackRefused(status, reason)`: 403 for a bad signature, owner key
or corp id; 400 for everything malformed, with a short reason and never a stack.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import unquote

from bot.dingtalk.crypto import CallbackRefused, DingTalkCrypto

PLATFORM = "dingtalk"
MAX_BODY_BYTES = 64 * 1024
MAX_KEY_CHARS = 512  # longer dedupe keys keep a readable head and a hash of the whole
CHECK_URL = "check_url"
SUCCESS = "success"
# Each query value DingTalk signs, under the spellings it uses (the first present one wins).
_SIGNATURE_NAMES = ("signature", "msg_signature")
_TIMESTAMP_NAMES = ("timestamp", "timeStamp")
_NONCE_NAMES = ("nonce",)


def refuse(status: int, reason: str, msg_id: str = "") -> NoReturn:
    raise CallbackRefused(status, reason, msg_id=msg_id)


# ---- shared wire helpers


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
            refuse(400, "the query string is not percent-encoded UTF-8")
    return out


def header_value(headers: Mapping[str, str], name: str) -> str:
    """The value of header `name` (case-insensitive), stripped; "" when absent."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), "")
    return value.strip()


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def load_json_object(data: bytes | str, what: str, max_bytes: int) -> dict[str, Any]:
    """`data` as a JSON object; CallbackRefused(400) if it is over `max_bytes` (UTF-8), not UTF-8,
    not strict JSON (NaN and Infinity are refused), nested too deep, not an object, or carries a
    string that is not valid Unicode. Every string in the result encodes to UTF-8."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        refuse(400, f"{what} is larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        refuse(400, f"{what} is not UTF-8")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        refuse(400, f"{what} is nested too deeply")
    except ValueError:  # json.JSONDecodeError, NaN/Infinity, over-long integers
        refuse(400, f"{what} is not valid JSON")
    if not isinstance(value, dict):
        refuse(400, f"{what} is not a JSON object")
    try:  # a \ud800 escape decodes to a lone surrogate: no key or inbox row could hold it
        canonical_json(value).encode("utf-8")
    except UnicodeEncodeError:
        refuse(400, f"{what} carries an invalid \\u escape (a lone surrogate)")
    except RecursionError:
        refuse(400, f"{what} is nested too deeply")
    return value


def opt_str(obj: Mapping[str, Any], *names: str, what: str = "", msg_id: str = "") -> str:
    """The first of `names` present in `obj` (not None) as a string; "" if none is. An integer is
    accepted as its decimal string (ids sometimes arrive as numbers); anything else is a 400."""
    for name in names:
        value = obj.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        refuse(400, f"{what}{name} is not a string", msg_id)
    return ""


def canonical_json(value: Mapping[str, Any]) -> str:
    """`value` as canonical JSON: keys sorted, no spaces, non-ASCII kept (hash it as UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def bounded_key(parts: list[str]) -> str:
    """`parts` joined with ':'; over MAX_KEY_CHARS, a readable head plus the sha256 of the whole."""
    key = ":".join(parts)
    if len(key) <= MAX_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: MAX_KEY_CHARS - 72]}:sha256:{digest}"


def key_part(value: str) -> str:
    """`value` made safe as one ':'-separated part of a dedupe key ('%' and ':' escaped), so that
    different part lists can never join into the same key."""
    return value.replace("%", "%25").replace(":", "%3A")


# ---- event subscription


@dataclass(frozen=True, slots=True, kw_only=True)
class DingTalkEvent:
    """One decrypted DingTalk event push. Absent fields are ""."""

    platform: str = PLATFORM
    dedupe_key: str
    event_type: str
    event_id: str = ""  # DingTalk's eventId / EventId when the push carries one
    corp_id: str = ""  # CorpId / corpId of the payload
    time_stamp: str = ""  # TimeStamp / timeStamp / EventTime of the payload, opaque
    payload: Mapping[str, Any] = field(default_factory=dict, hash=False)
    raw: str  # the decrypted JSON, as stored in the inbox

    @property
    def is_check_url(self) -> bool:
        """The URL check DingTalk sends when the callback URL is saved: answer `reply_success`
        within 1500 ms and store nothing."""
        return self.event_type == CHECK_URL


def _query_value(query: Mapping[str, str], names: tuple[str, ...]) -> str:
    return next((query[n] for n in names if query.get(n)), "")


def event_dedupe_key(payload: Mapping[str, Any], event_id: str) -> str:
    """`evt:id:<eventId>` when the push carries an event id (DingTalk's idempotency id).

    Pushes without one (the classic contact / approval events: `user_add_org`,
    `bpms_task_change`, ...) get `evt:sha256:<hex>`: the sha256 of the payload's canonical JSON
    (keys sorted, compact, UTF-8), so a re-push of the same event collides even if DingTalk
    re-serialises it with another key order or spacing; two different events differ in some
    value (their `TimeStamp` at least) and so do their keys."""
    if event_id:
        return bounded_key(["evt", "id", event_id])
    digest = hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
    return f"evt:sha256:{digest}"


def parse_event_plaintext(
    plaintext: str, *, corp_id: str | None = None, max_bytes: int = MAX_BODY_BYTES
) -> DingTalkEvent:
    """The decrypted JSON of one push -> DingTalkEvent. With `corp_id`, a payload naming another
    corp is refused (403); a payload naming none is accepted (the owner key was checked)."""
    payload = load_json_object(plaintext, "the decrypted event", max_bytes)
    event_type = opt_str(payload, "EventType", "eventType", what="the event's ")
    if not event_type:
        refuse(400, "the decrypted event has no EventType")
    event_id = opt_str(payload, "EventId", "eventId", what="the event's ")
    corp = opt_str(payload, "CorpId", "corpId", what="the event's ")
    if corp_id is not None and corp and corp != corp_id:
        refuse(403, "the event is for another corp (CorpId)", event_id)
    return DingTalkEvent(
        dedupe_key=event_dedupe_key(payload, event_id),
        event_type=event_type,
        event_id=event_id,
        corp_id=corp,
        time_stamp=opt_str(payload, "TimeStamp", "timeStamp", "EventTime", what="the event's "),
        payload=payload,
        raw=plaintext,
    )


def parse_event(
    crypto: DingTalkCrypto,
    raw_query: str,
    body: bytes,
    *,
    max_bytes: int = MAX_BODY_BYTES,
    corp_id: str | None = None,
) -> DingTalkEvent:
    """Verify, decrypt and parse one event push (the URL check included)."""
    if len(body) > max_bytes:
        refuse(400, f"the body is larger than {max_bytes} bytes")
    query = parse_query(raw_query)
    signature = _query_value(query, _SIGNATURE_NAMES)
    timestamp = _query_value(query, _TIMESTAMP_NAMES)
    nonce = _query_value(query, _NONCE_NAMES)
    missing = [
        names[0]
        for names, value in (
            (_SIGNATURE_NAMES, signature),
            (_TIMESTAMP_NAMES, timestamp),
            (_NONCE_NAMES, nonce),
        )
        if not value
    ]
    if missing:
        refuse(400, f"query parameter missing: {', '.join(missing)}")
    outer = load_json_object(body, "the body", max_bytes)
    encrypt = outer.get("encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        refuse(400, "encrypt is missing")
    crypto.verify(signature, timestamp, nonce, encrypt)  # 403 on mismatch, constant time
    plaintext = crypto.decrypt(encrypt)  # 403 for another owner key, 400 if it does not decrypt
    return parse_event_plaintext(plaintext, corp_id=corp_id, max_bytes=max_bytes)


def reply_success(
    crypto: DingTalkCrypto, *, timestamp: str, nonce: str, random16: bytes | None = None
) -> dict[str, str]:
    """The JSON body of the HTTP 200 that acknowledges a push: "success", encrypted and signed.

    `timestamp` and `nonce` may be the push's own (as DingTalk's samples do) or fresh ones; note
    the camel-case `timeStamp` key. `random16` fixes the cipher's random prefix (tests only)."""
    encrypt = crypto.encrypt(SUCCESS, random16=random16)
    return {
        "msg_signature": crypto.sign(timestamp, nonce, encrypt),
        "timeStamp": timestamp,
        "nonce": nonce,
        "encrypt": encrypt,
    }
