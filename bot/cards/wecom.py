"""Card -> WeCom template-card JSON (message/send and update_template_card), within WeCom's limits.

- A card with buttons renders as ``button_interaction``; a card without (CC, RESULT, INFO) as
  ``text_notice``, which WeCom only accepts with a ``card_action``: such a card must have a link.
- Layout: ``source.desc`` = card.source; ``main_title`` = {title, desc: subtitle};
  ``sub_title_text`` = the result text (for a result card), else "工单 #<id>";
  ``horizontal_content_list`` = the rows; ``card_action`` = {type 1, url: link_url}; ``task_id``;
  ``button_list`` = the buttons. ``link_text`` has no place on a WeCom card and is not rendered.
- Limits enforced whatever the card says: texts are cleaned (whitespace runs -> one space, control
  characters dropped) and cut with "…" (title 36 characters, row keys 16, row values 128, ...);
  at most 6 rows and 6 buttons; button keys non-empty, at most 1024 UTF-8 bytes and unique (a
  button breaking that is dropped, never cut: a cut key would not decode); style in 1..4; task_id
  checked against ``[A-Za-z0-9_\\-@]{1,128}``.

Updating a card (``render_wecom_update``): when the caller passes the ``previous`` card and only
the decision changed (same title, subtitle, rows, link and source; the new card has no buttons),
the update is the cheap ``{"button": {"replace_name": result_text}}``, which greys the buttons out
with that text. Otherwise the whole card is re-sent as ``template_card`` (same task_id) so the rows
(e.g. 当前状态) are current; a card without buttons then carries ``replace_text`` = its result text,
which WeCom shows greyed in place of the buttons (with one placeholder button whose key is not a
payload, as button_interaction requires a button list).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from bot.cards.model import Button, ButtonStyle, Card, CardError, Row

MAX_ROWS = 6
MAX_BUTTONS = 6
KEY_MAX_BYTES = 1024
TASK_ID_MAX = 128
TITLE_MAX = 36
DESC_MAX = 44
SUB_TITLE_MAX = 112
ROW_KEY_MAX = 16
ROW_VALUE_MAX = 128
BUTTON_TEXT_MAX = 10
SOURCE_MAX = 13
REPLACE_MAX = 36
ELLIPSIS = "…"
EMPTY = "—"

STYLES = {ButtonStyle.PRIMARY: 1, ButtonStyle.DANGER: 2, ButtonStyle.DEFAULT: 4}

TASK_ID_RE = re.compile(r"[A-Za-z0-9_\-@]{1,128}\Z", re.ASCII)
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_SPACE_RE = re.compile(r"\s+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")


def clean(text: str, limit: int) -> str:
    """One line of at most `limit` characters; a longer text ends with "…"."""
    text = _SPACE_RE.sub(" ", text)
    text = _CONTROL_RE.sub("", text).strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def task_id_for(ticket_id: int, recipient: str, seq: int) -> str:
    """A task_id unique per (ticket, recipient, seq): ``tb_<ticket>_<seq>_u<recipient>``.

    Characters of the recipient outside ``[A-Za-z0-9_-]`` (and "@" itself) are escaped as "@" and
    two hex digits per UTF-8 byte, so distinct recipients never collide; if that makes the id longer
    than 128 bytes, the recipient part becomes ``h`` + 40 hex digits of its SHA-256."""
    if isinstance(ticket_id, bool) or isinstance(seq, bool) or ticket_id < 0 or seq < 0:
        raise CardError("ticket_id and seq must be non-negative ints")
    escaped = "".join(
        c if c in _SAFE else "".join(f"@{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        for c in recipient
    )
    task_id = f"tb_{ticket_id}_{seq}_u{escaped}"
    if len(task_id) > TASK_ID_MAX:
        digest = hashlib.sha256(recipient.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        task_id = f"tb_{ticket_id}_{seq}_h{digest}"
    if len(task_id) > TASK_ID_MAX:
        raise CardError("ticket_id or seq too large for a task_id")
    return task_id


def _check_task_id(task_id: str) -> str:
    if not isinstance(task_id, str) or TASK_ID_RE.match(task_id) is None:
        raise CardError(f"bad WeCom task_id {task_id!r}: [A-Za-z0-9_-@], 1..128 bytes")
    return task_id


def _rows(rows: tuple[Row, ...]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for row in rows:
        key = clean(row.key, ROW_KEY_MAX)
        if key:
            out.append({"keyname": key, "value": clean(row.value, ROW_VALUE_MAX) or EMPTY})
        if len(out) == MAX_ROWS:
            break
    return out


def _buttons(buttons: tuple[Button, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for b in buttons:
        key = b.action_key
        if not key or len(key.encode("utf-8", "surrogatepass")) > KEY_MAX_BYTES or key in seen:
            continue
        seen.add(key)
        out.append(
            {
                "text": clean(b.label, BUTTON_TEXT_MAX) or "操作",
                "style": STYLES.get(b.style, STYLES[ButtonStyle.DEFAULT]),
                "key": key,
            }
        )
        if len(out) == MAX_BUTTONS:
            break
    return out


def _sub_title(card: Card) -> str:
    if card.result_text:
        return clean(card.result_text, SUB_TITLE_MAX)
    return f"工单 #{card.ticket_id}" if card.ticket_id else ""


def _template_card(card: Card, task_id: str, buttons: list[dict[str, Any]]) -> dict[str, Any]:
    link = card.link_url.strip()
    if not buttons and not link:
        raise CardError("a WeCom card without buttons (text_notice) needs a link_url for card_action")
    tc: dict[str, Any] = {"card_type": "button_interaction" if buttons else "text_notice"}
    if source := clean(card.source, SOURCE_MAX):
        tc["source"] = {"desc": source}
    main_title = {"title": clean(card.title, TITLE_MAX) or "工单"}
    if desc := clean(card.subtitle, DESC_MAX):
        main_title["desc"] = desc
    tc["main_title"] = main_title
    if sub := _sub_title(card):
        tc["sub_title_text"] = sub
    if rows := _rows(card.rows):
        tc["horizontal_content_list"] = rows
    if link:
        tc["card_action"] = {"type": 1, "url": link}
    tc["task_id"] = _check_task_id(task_id)
    if buttons:
        tc["button_list"] = buttons
    return tc


def render_wecom(card: Card, *, task_id: str, agent_id: int) -> dict[str, Any]:
    """The message/send body for `card`, without ``touser`` (the caller adds the recipients)."""
    return {
        "msgtype": "template_card",
        "agentid": agent_id,
        "template_card": _template_card(card, task_id, _buttons(card.buttons)),
    }


def _content(card: Card) -> tuple[object, ...]:
    return (card.title, card.subtitle, card.rows, card.link_url, card.source)


def render_wecom_update(
    card: Card, *, task_id: str, agent_id: int, previous: Card | None = None
) -> dict[str, Any]:
    """The update_template_card body for `card`, without ``userids`` and ``response_code``.

    `task_id` is the one the card was sent with; `previous` the card as it was sent (see the module
    doc for which form is chosen)."""
    replace = clean(card.result_text, REPLACE_MAX) or "已处理"
    if previous is not None and not card.buttons and _content(previous) == _content(card):
        return {"agentid": agent_id, "button": {"replace_name": replace}}
    buttons = _buttons(card.buttons)
    if buttons:
        return {"agentid": agent_id, "template_card": _template_card(card, task_id, buttons)}
    placeholder = [{"text": "已处理", "style": STYLES[ButtonStyle.DEFAULT], "key": "done"}]
    tc = _template_card(card, task_id, placeholder)
    tc["replace_text"] = replace
    return {"agentid": agent_id, "template_card": tc}
