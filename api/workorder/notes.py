"""What a flow-log entry carries for the open API besides its text: FlowLog.extra as the write
endpoints record it (``pic``: picture urls, ``attached``: [{type: image|video, url}], ``is_show``:
0/1, visible to the customer, ``cc``: usernames copied with the step, ``point``: a rating, ``to``:
the username a switch handed the order to). Entries written by other dialects may lack any of
them: each reads as empty (is_show as 0, as in the work_order_change webhooks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.ticket import FlowLog

ATTACHMENT_TYPES = ("image", "video")


def _urls(value: object) -> list[str]:
    if not isinstance(value, list | tuple):
        return []
    return [v for v in value if isinstance(v, str) and v]


def _attached(value: object) -> list[dict[str, str]]:
    if not isinstance(value, list | tuple):
        return []
    out: list[dict[str, str]] = []
    for item in value:
        if isinstance(item, Mapping) and isinstance(item.get("url"), str) and item["url"]:
            kind = item.get("type")
            out.append({"type": kind if kind in ATTACHMENT_TYPES else "image", "url": item["url"]})
    return out


def _flag(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    return 1 if isinstance(value, int) and value == 1 else 0


def _point(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True, slots=True)
class Note:
    text: str
    pic: list[str]
    attached: list[dict[str, str]]
    is_show: int
    cc: list[str] | None
    point: int
    to: str


def note_of(log: FlowLog) -> Note:
    extra: Mapping[str, Any] = log.extra
    cc = extra.get("cc")
    to = extra.get("to")
    return Note(
        text=log.suggestion,
        pic=_urls(extra.get("pic")),
        attached=_attached(extra.get("attached")),
        is_show=_flag(extra.get("is_show")),
        cc=[p for p in cc if isinstance(p, str)] if isinstance(cc, list) else None,
        point=_point(extra.get("point")),
        to=to if isinstance(to, str) else "",
    )
