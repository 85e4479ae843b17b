"""Reading the open API's request parameters, each refusal naming the parameter (41001 missing,
40003 malformed). JSON bodies go through api.params.json_body (size limit, UTF-8, an object, no
NUL); a key an endpoint does not take is refused, so a typo never goes unnoticed."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from aiohttp import web

from api.errors import ApiError
from api.params import int_value, json_body
from api.workorder.envelope import from_api_error
from api.workorder.errcodes import bad, missing
from api.workorder.notes import ATTACHMENT_TYPES
from api.workorder.staff import Staff

MAX_TEXT = 10_000
MAX_URLS = 20
MAX_URL = 2_000
MAX_PEOPLE = 50
MAX_IDS = 100
MAX_ID = 2**63 - 1


async def body(request: web.Request, allowed: Collection[str]) -> dict[str, Any]:
    try:
        data = await json_body(request)
    except ApiError as exc:
        raise from_api_error(exc) from None
    unknown = sorted(k for k in data if k not in allowed)
    if unknown:
        shown = unknown[0] if len(unknown[0]) <= 40 else unknown[0][:37] + "..."
        raise bad(f"unknown parameter {shown!r}; this endpoint takes {', '.join(sorted(allowed))}")
    return data


def _given(data: dict[str, Any], name: str) -> Any:
    raw = data.get(name)
    return None if isinstance(raw, str) and not raw.strip() else raw


def integer(
    data: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    raw = _given(data, name)
    if raw is None:
        if required:
            raise missing(name)
        return None
    if not isinstance(raw, int | str) or isinstance(raw, bool):
        raise bad(f"'{name}' must be an integer")
    try:
        return int_value(name, raw, minimum=minimum, maximum=maximum)
    except ApiError as exc:
        raise from_api_error(exc) from None


def required_integer(data: dict[str, Any], name: str, *, minimum: int, maximum: int) -> int:
    value = integer(data, name, required=True, minimum=minimum, maximum=maximum)
    if value is None:
        raise missing(name)
    return value


def text(data: dict[str, Any], name: str, *, limit: int = MAX_TEXT) -> str:
    raw = data.get(name)
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise bad(f"'{name}' must be a string")
    if len(raw) > limit:
        raise bad(f"'{name}' is longer than {limit} characters")
    return raw


def urls(raw: Any, name: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(u, str) and u.strip() for u in raw):
        raise bad(f"'{name}' must be a list of urls")
    if len(raw) > MAX_URLS:
        raise bad(f"'{name}' has {len(raw)} urls; at most {MAX_URLS}")
    if any(len(u) > MAX_URL for u in raw):
        raise bad(f"'{name}' has a url longer than {MAX_URL} characters")
    return [u.strip() for u in raw]


def content(data: dict[str, Any], *, required: bool = False) -> tuple[str, list[str]]:
    """(text, pic) of ``content``: {"text": "...", "pic": [urls]} (a bare string is the text)."""
    raw = data.get("content")
    if raw is None or isinstance(raw, str):
        note = raw or ""
        pic: list[str] = []
    elif isinstance(raw, dict):
        extra = sorted(set(raw) - {"text", "pic"})
        if extra:
            raise bad(f"'content' takes text and pic, not {extra[0][:40]!r}")
        note = text(raw, "text")
        pic = urls(raw.get("pic"), "content.pic")
    else:
        raise bad("'content' must be an object {text, pic}")
    if len(note) > MAX_TEXT:
        raise bad(f"'content.text' is longer than {MAX_TEXT} characters")
    if required and not note.strip():
        raise missing("content.text")
    return note, pic


def attached(data: dict[str, Any]) -> list[dict[str, str]]:
    """``attached_json``: [{"type": "image" | "video", "url": ...}] (or that list as a JSON string)."""
    raw = data.get("attached_json")
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            raise bad("'attached_json' must be a list of {type, url} (or one as a JSON string)") from None
    if not isinstance(raw, list):
        raise bad("'attached_json' must be a list of {type, url}")
    if len(raw) > MAX_URLS:
        raise bad(f"'attached_json' has {len(raw)} items; at most {MAX_URLS}")
    out = []
    for index, item in enumerate(raw):
        kind = item.get("type") if isinstance(item, dict) else None
        url = item.get("url") if isinstance(item, dict) else None
        if kind not in ATTACHMENT_TYPES or not isinstance(url, str) or not url.strip() or len(url) > MAX_URL:
            raise bad(f'attached_json[{index}] must be {{"type": "image" or "video", "url": ...}}')
        out.append({"type": str(kind), "url": url.strip()})
    return out


def is_show(data: dict[str, Any]) -> int:
    """``is_show``: 1 if the customer may see the step, 0 (the default) if not."""
    raw = data.get("is_show")
    if raw is None:
        return 0
    if isinstance(raw, bool):
        return int(raw)
    if raw in (0, 1, "0", "1"):
        return int(raw)
    raise bad("'is_show' must be 0 or 1")


def staff_ids(data: dict[str, Any], name: str) -> list[str]:
    raw = data.get(name)
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise bad(f"'{name}' must be a list of staff ids")
    if len(raw) > MAX_PEOPLE:
        raise bad(f"'{name}' names {len(raw)} people; at most {MAX_PEOPLE}")
    return [v.strip() for v in raw if v.strip()]


def people(data: dict[str, Any], name: str, staff: Staff) -> tuple[str, ...]:
    """The usernames of a list of staff ids (WeCom userids or usernames); unknown ones refused."""
    found: list[str] = []
    for staff_id in staff_ids(data, name):
        username = staff.username_of(staff_id)
        if username is None:
            raise bad(f"'{name}': no active staff member {staff_id[:60]!r}")
        found.append(username)
    return tuple(dict.fromkeys(found))


def person(data: dict[str, Any], name: str, staff: Staff) -> str | None:
    raw = data.get(name)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise bad(f"'{name}' must be a staff id (a string)")
    username = staff.username_of(raw.strip())
    if username is None:
        raise bad(f"'{name}': no active staff member {raw[:60]!r}")
    return username


def string_ids(data: dict[str, Any], name: str, *, limit: int = 128) -> list[str]:
    raw = data.get(name)
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(v, str) and 0 < len(v.strip()) <= limit for v in raw):
        raise bad(f"'{name}' must be a list of ids (strings of 1 to {limit} characters)")
    if len(raw) > MAX_IDS:
        raise bad(f"'{name}' has {len(raw)} ids; at most {MAX_IDS}")
    return list(dict.fromkeys(v.strip() for v in raw))


def query_int(request: web.Request, name: str, *, minimum: int, maximum: int) -> int | None:
    raw = request.query.get(name, "").strip()
    if raw == "":
        return None
    try:
        return int_value(name, raw, minimum=minimum, maximum=maximum)
    except ApiError as exc:
        raise from_api_error(exc) from None


def query_text(request: web.Request, name: str, *, limit: int = 200) -> str | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    if len(raw) > limit:
        raise bad(f"'{name}' is longer than {limit} characters")
    if any(ch == "\x00" or "\ud800" <= ch <= "\udfff" for ch in raw):
        raise bad(f"'{name}' contains a NUL character or an unpaired surrogate")
    return raw
