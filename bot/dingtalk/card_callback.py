"""DingTalk interactive card click callbacks (HTTP callbackType) as pure functions over plain values.

shared/docs/platforms.md, "Interactive cards":

- `verify_card_signature`: headers `x-ddpaas-signature-timestamp` and `x-ddpaas-signature` =
  base64(HMAC-SHA256(key=apiSecret, msg=timestamp)), compared in constant time. The apiSecret is
  the one we registered with `/v1.0/card/callbacks/register`. With `window_ms`, a timestamp (ms)
  further than that from `now_ms` is refused too; without it only the signature is checked and
  an exact replay is dropped by its dedupe key.
- `parse_card_callback`: the body `{"type": "actionCallback", "outTrackId", "corpId", "userId",
  "content": "<JSON string>"}`; the content carries `cardPrivateData: {actionIds: [...],
  params: {...}}`. Our buttons put their payload (bot.cards.model.encode_action, e.g.
  `t:123:s:102:a:transition:x:152:n:3f`) under the params key `action`; `action_key` is that, or
  else the first actionId. It is returned verbatim: the handler decodes it and never trusts it.

Refusals are `CallbackRefused(status, reason)`: 400 for missing or malformed input, 403 for a
bad signature, an expired timestamp or (with `corp_id`) a click from another corp.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.dingtalk.events import (
    MAX_BODY_BYTES,
    PLATFORM,
    bounded_key,
    canonical_json,
    header_value,
    key_part,
    load_json_object,
    opt_str,
    refuse,
)

TIMESTAMP_HEADER = "x-ddpaas-signature-timestamp"
SIGNATURE_HEADER = "x-ddpaas-signature"
ACTION_CALLBACK = "actionCallback"
ACTION_PARAM = "action"  # the params key our buttons carry their payload under


def _mac(timestamp: str, api_secret: str) -> bytes:
    return hmac.new(api_secret.encode(), timestamp.encode(), hashlib.sha256).digest()


def card_signature(timestamp: str, api_secret: str) -> str:
    """base64(HMAC-SHA256(key=apiSecret, msg=timestamp))."""
    return base64.b64encode(_mac(timestamp, api_secret)).decode()


def verify_card_signature(
    headers: Mapping[str, str], api_secret: str, now_ms: int, window_ms: int | None = None
) -> None:
    """Check the signature headers of a card callback POST; CallbackRefused if not good.

    400: a header is missing, or the timestamp is not an integer (ms);
    403: the signature does not match (one that is not base64 included), or the timestamp is
    more than `window_ms` from `now_ms` (either direction) when `window_ms` is set."""
    timestamp = header_value(headers, TIMESTAMP_HEADER)
    signature = header_value(headers, SIGNATURE_HEADER)
    missing = [n for n, v in ((TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)) if not v]
    if missing:
        refuse(400, f"header missing: {', '.join(missing)}")
    if not timestamp.isascii() or not timestamp.isdigit():
        refuse(400, f"{TIMESTAMP_HEADER} is not an integer (ms)")
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        given = b""
    if not hmac.compare_digest(_mac(timestamp, api_secret), given):
        refuse(403, "card callback signature does not match")
    if window_ms is None:
        return
    if abs(now_ms - int(timestamp)) > window_ms:
        refuse(403, f"{TIMESTAMP_HEADER} is more than {window_ms // 1000} s away from our clock")


@dataclass(frozen=True, slots=True, kw_only=True)
class CardClick:
    """One button click on one of our interactive cards."""

    platform: str = PLATFORM
    dedupe_key: str  # click:<outTrackId>:<userId>:<sha1 of the canonical content>
    out_track_id: str  # ours: names the card instance we sent
    user_id: str  # the clicker's userId (staff id)
    corp_id: str = ""
    action_ids: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    action_key: str  # params["action"], else the first actionId; never "" (that is refused)
    content: str  # the content JSON string, verbatim
    raw: str  # the body, as stored in the inbox


def click_dedupe_key(out_track_id: str, user_id: str, content: Mapping[str, Any]) -> str:
    """`click:<outTrackId>:<userId>:<sha1 of content>`, over the parsed content in canonical JSON
    (keys sorted, compact, UTF-8) so a re-sent click that DingTalk re-serialised still collides.

    The content names the button (actionIds, params), so two buttons of one card clicked by one
    user differ, and an exact replay (or a double click of the same button on the same card
    state) collides. ':' and '%' in the ids are escaped so that different ids never join into
    the same key."""
    digest = hashlib.sha1(canonical_json(content).encode("utf-8"), usedforsecurity=False).hexdigest()
    return bounded_key(["click", key_part(out_track_id), key_part(user_id), digest])


def parse_card_callback(
    body: bytes, *, max_bytes: int = MAX_BODY_BYTES, corp_id: str | None = None
) -> CardClick:
    """The JSON body of a card callback POST -> CardClick (CallbackRefused if unusable)."""
    data = load_json_object(body, "the body", max_bytes)
    kind = opt_str(data, "type")
    if kind != ACTION_CALLBACK:
        refuse(400, f"type is not {ACTION_CALLBACK}")
    out_track_id = opt_str(data, "outTrackId")
    user_id = opt_str(data, "userId")
    corp = opt_str(data, "corpId")
    missing = [n for n, v in (("outTrackId", out_track_id), ("userId", user_id)) if not v]
    if missing:
        refuse(400, f"card callback without {', '.join(missing)}")
    if corp_id is not None and corp != corp_id:
        refuse(403, "the click is from another corp (corpId)")
    content = data.get("content")
    if not isinstance(content, str) or not content:
        refuse(400, "card callback without content")
    inner = load_json_object(content, "the card callback content", max_bytes)
    private = inner.get("cardPrivateData")
    if not isinstance(private, dict):
        refuse(400, "the card callback content has no cardPrivateData")
    action_ids = private.get("actionIds", [])
    if action_ids is None:
        action_ids = []
    if not isinstance(action_ids, list) or not all(isinstance(a, str) for a in action_ids):
        refuse(400, "cardPrivateData.actionIds is not a list of strings")
    params = private.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        refuse(400, "cardPrivateData.params is not an object")
    action = params.get(ACTION_PARAM)
    action_key = action if isinstance(action, str) and action else next((a for a in action_ids if a), "")
    if not action_key:
        refuse(400, "the click carries no action (params.action or actionIds)")
    return CardClick(
        dedupe_key=click_dedupe_key(out_track_id, user_id, inner),
        out_track_id=out_track_id,
        user_id=user_id,
        corp_id=corp,
        action_ids=tuple(action_ids),
        params=params,
        action_key=action_key,
        content=content,
        raw=body.decode("utf-8"),
    )
