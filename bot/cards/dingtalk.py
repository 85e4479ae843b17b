"""Card -> DingTalk: template variables for interactive cards, plus text and ``oa`` fallbacks.

Interactive cards
-----------------
A DingTalk interactive card (``POST /v1.0/card/instances/createAndDeliver``, ``PUT
/v1.0/card/instances``) is an instance of a TEMPLATE that the organisation imports into DingTalk's
card platform (config/dingtalk/card_template.json, see config/dingtalk/README.md). Our code only
fills the template's variables: ``cardData.cardParamMap``, whose values must all be strings.

`render_dingtalk` maps a `Card` onto this FIXED set of variables (`VARIABLES`); every key is
always present, so an update replaces every variable and nothing stale survives:

=================  ============================================================================
``title``          the card title (never empty: "工单" if the card has none)
``subtitle``       one line under the title (e.g. "待你处理 · 已等待3小时"); may be ""
``source``         the app name shown above the title (e.g. "工单助手"); may be ""
``rows``           the key-value rows as a JSON array string ``[{"key":..,"value":..}]``, at
                   most 6 (the template's Loop component is bound to it, items ``${loop.key}``
                   and ``${loop.value}``); ``"[]"`` when there are none
``link_url``       the ticket page ("查看详情" opens it); "" when the card's link is unusable
``link_text``      the link's label, "查看详情" by default
``result_text``    the decision, shown greyed when ``status`` is "done"
                   (e.g. "已同意 · 王强 · 11-21 14:05"); may be ""
``status``         "pending" while the card has buttons (the template shows the button area
                   only then), else "done" (the template shows ``result_text`` instead)
``btnN_text``      N = 1..6: the button's label; "" for an unused slot
``btnN_action``    the button's action key (`bot.cards.model` payload
                   ``t:..:s:..:a:..:x:..:n:..``); "" for an unused slot
``btnN_style``     "primary", "danger" or "default"; "" for an unused slot (the template shows
                   slot N only when its style is one of the three)
=================  ============================================================================

Why rows are a JSON string: ``cardParamMap`` is ``Map<String, String>``, and list-typed template
variables (the card platform's 对象数组 / loopArray, bound to a Loop component) are passed as the
JSON text of the list. Buttons, on the other hand, are six fixed slots of flat string variables,
so that their visibility, colour and callback parameter are plain bindings in the template.

Click callback: each button slot N of the shipped template is a "request" (回传请求) button with
actionId ``btnN`` and ONE callback parameter, ``action`` = the value of ``btnN_action``. A click
therefore arrives (HTTP callback registered through ``/v1.0/card/callbacks/register``) as::

    {"type": "actionCallback", "outTrackId": .., "userId": .., "content":
     "{\\"cardPrivateData\\": {\\"actionIds\\": [\\"btn1\\"], \\"params\\": {\\"action\\": \\"t:7:s:2:a:..\\"}}}"}

and `callback_action` turns that ``content`` into a `ButtonAction` (or None).

Limits enforced whatever the card says (DingTalk documents none for template variables; these
keep cards readable and requests small): texts are cleaned (whitespace runs -> one space, control,
zero-width and surrogate characters dropped) and cut with "…" (title 60 characters, subtitle 120,
source 20, row keys 20, row values 200, button labels 12, result text 60, link text 10); at most 6
rows and 6 buttons; a button is kept only if its action key decodes with
`bot.cards.model.decode_action` and was not used by an earlier button (a bad button is dropped,
never cut: a cut key would not decode); the link must be an http(s) or dingtalk URL without
whitespace, at most 2048 characters, else it is "". Every value is a str.

Fallbacks (no template id configured)
-------------------------------------
`render_dingtalk_text` gives plain text (one item per line; DingTalk turns the URL into a link)
for a ``text`` reply to a robot ``sessionWebhook``; `render_dingtalk_oa` gives the ``oa`` object of
a work notification (``{"msgtype": "oa", "oa": ..}``), whose status bar can be updated later.
Neither can carry buttons: a pending card says which decisions wait and links to the ticket page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.cards.model import Button, ButtonAction, ButtonStyle, Card, CardError, CardKind, decode_action

MAX_ROWS = 6
MAX_BUTTONS = 6
TITLE_MAX = 60
SUBTITLE_MAX = 120
SOURCE_MAX = 20
ROW_KEY_MAX = 20
ROW_VALUE_MAX = 200
BUTTON_TEXT_MAX = 12
RESULT_MAX = 60
LINK_TEXT_MAX = 10
URL_MAX = 2048
ELLIPSIS = "…"
EMPTY = "—"
DEFAULT_TITLE = "工单"
DEFAULT_LINK_TEXT = "查看详情"
DEFAULT_RESULT = "已处理"

STATUS_PENDING = "pending"
STATUS_DONE = "done"
STYLES = (ButtonStyle.PRIMARY.value, ButtonStyle.DANGER.value, ButtonStyle.DEFAULT.value)

CALLBACK_PARAM = "action"  # the callback parameter that carries a button's action key
ROW_FIELDS = ("key", "value")  # the fields of one item of ``rows``


def button_variables(n: int) -> tuple[str, str, str]:
    """The text, action and style variables of button slot `n` (1..6)."""
    return (f"btn{n}_text", f"btn{n}_action", f"btn{n}_style")


def action_id(n: int) -> str:
    """The template's actionId of button slot `n`: what ``cardPrivateData.actionIds`` reports."""
    return f"btn{n}"


TEXT_VARIABLES = ("title", "subtitle", "source", "rows", "link_url", "link_text", "result_text", "status")
VARIABLES: tuple[str, ...] = TEXT_VARIABLES + tuple(
    name for n in range(1, MAX_BUTTONS + 1) for name in button_variables(n)
)

_SPACE_RE = re.compile(r"\s+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff\ud800-\udfff]")
_URL_RE = re.compile(r"(?:https?|dingtalk)://[^\s\x00-\x1f\x7f-\x9f]+\Z", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DingTalkCard:
    """The variables of one card instance: every key of `VARIABLES`, every value a str."""

    param_map: dict[str, str]

    def card_data(self) -> dict[str, dict[str, str]]:
        """``cardData`` for createAndDeliver / PUT card instances."""
        return {"cardParamMap": dict(self.param_map)}

    def private_data(self, user_id: str) -> dict[str, dict[str, dict[str, str]]]:
        """``privateData`` giving `user_id` these variables (DingTalk shows a user's private
        variables instead of the public ones), for a card seen by several people in a group."""
        return {user_id: self.card_data()}


def clean(text: str, limit: int) -> str:
    """One line of at most `limit` characters; a longer text ends with "…"."""
    text = _SPACE_RE.sub(" ", text)
    text = _CONTROL_RE.sub("", text).strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def link_url(url: str) -> str:
    """`url` if a DingTalk client can open it (http, https or dingtalk, no whitespace, at most
    2048 characters), else "". A URL is never cut: a cut URL points somewhere else."""
    url = url.strip()
    if len(url) > URL_MAX or _URL_RE.match(url) is None:
        return ""
    return url


def _rows(card: Card) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for row in card.rows:
        key = clean(row.key, ROW_KEY_MAX)
        if key:
            out.append((key, clean(row.value, ROW_VALUE_MAX) or EMPTY))
        if len(out) == MAX_ROWS:
            break
    return out


def _buttons(buttons: tuple[Button, ...]) -> list[tuple[str, str, str]]:
    """(text, action key, style) of the buttons kept: valid, unique keys; at most 6."""
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for b in buttons:
        key = b.action_key
        if key in seen or decode_action(key) is None:
            continue
        seen.add(key)
        style = str(b.style) if b.style in STYLES else ButtonStyle.DEFAULT.value
        out.append((clean(b.label, BUTTON_TEXT_MAX) or "操作", key, style))
        if len(out) == MAX_BUTTONS:
            break
    return out


def _param_map(card: Card, result: str) -> dict[str, str]:
    buttons = _buttons(card.buttons)
    rows = [{"key": k, "value": v} for k, v in _rows(card)]
    params = {
        "title": clean(card.title, TITLE_MAX) or DEFAULT_TITLE,
        "subtitle": clean(card.subtitle, SUBTITLE_MAX),
        "source": clean(card.source, SOURCE_MAX),
        "rows": json.dumps(rows, ensure_ascii=False, separators=(",", ":")),
        "link_url": link_url(card.link_url),
        "link_text": clean(card.link_text, LINK_TEXT_MAX) or DEFAULT_LINK_TEXT,
        "result_text": result,
        "status": STATUS_PENDING if buttons else STATUS_DONE,
    }
    for n in range(1, MAX_BUTTONS + 1):
        text, action, style = button_variables(n)
        values = buttons[n - 1] if n <= len(buttons) else ("", "", "")
        params[text], params[action], params[style] = values
    return params


def render_dingtalk(card: Card) -> DingTalkCard:
    """The variables for a new card (``cardData.cardParamMap`` of createAndDeliver)."""
    return DingTalkCard(_param_map(card, clean(card.result_text, RESULT_MAX)))


def render_dingtalk_update(card: Card) -> DingTalkCard:
    """The variables for ``PUT /v1.0/card/instances``: the same keys as `render_dingtalk`, so the
    update replaces every variable (buttons the new card lacks disappear). A card without buttons
    shows its result text, "已处理" when it has none, where the buttons were."""
    result = clean(card.result_text, RESULT_MAX)
    params = _param_map(card, result)
    if params["status"] == STATUS_DONE and not result:
        params["result_text"] = DEFAULT_RESULT
    return DingTalkCard(params)


def callback_action(content: object) -> ButtonAction | None:
    """The button a card callback reports: `content` is the callback's ``content`` (the JSON
    text, or its parsed object) with ``cardPrivateData.params.action``. None for anything else;
    never raises. Like every action key, the result is not trusted by itself."""
    if isinstance(content, str | bytes):
        try:
            content = json.loads(content)
        except (ValueError, RecursionError):
            return None
    if not isinstance(content, Mapping):
        return None
    private = content.get("cardPrivateData")
    params = private.get("params") if isinstance(private, Mapping) else None
    if not isinstance(params, Mapping):
        return None
    return decode_action(params.get(CALLBACK_PARAM))


# --- fallbacks: plain text and the oa work notification ----------------------------------------------

TEXT_MAX = 1000
TEXT_MIN_BODY = 100
OA_MAX_BYTES = 2048  # the whole msg ({"msgtype": "oa", "oa": ..}) as UTF-8 JSON
OA_HEAD_TEXT_MAX = 10
OA_TITLE_MAX = 50
OA_STATUS_MAX = 36
OA_HEAD_BG = "FF3296FA"  # ARGB without "0x"
OA_STATUS_BG = {"pending": "0xFFFF9200", "done": "0xFF9E9E9E", "notice": "0xFF3296FA"}
_KIND_STATUS = {
    CardKind.PENDING: "待处理",
    CardKind.URGE: "催办",
    CardKind.CC: "抄送",
    CardKind.RESULT: DEFAULT_RESULT,
    CardKind.INFO: "通知",
}


def _waiting(buttons: list[tuple[str, str, str]]) -> str:
    return "可处理: " + "、".join(text for text, _, _ in buttons) + "（请打开详情页操作）"


def render_dingtalk_text(card: Card) -> str:
    """Plain text for a ``text`` message: title, subtitle, rows, result or waiting decisions,
    then the link. At most 1000 characters; the link line is never cut (a link longer than 900
    characters makes the text longer, with at least 100 characters of card before it)."""
    source, title = clean(card.source, SOURCE_MAX), clean(card.title, TITLE_MAX) or DEFAULT_TITLE
    lines = [f"【{source}】{title}" if source else title]
    if subtitle := clean(card.subtitle, SUBTITLE_MAX):
        lines.append(subtitle)
    lines.extend(f"{key}: {value}" for key, value in _rows(card))
    buttons = _buttons(card.buttons)
    if buttons:
        lines.append(_waiting(buttons))
    elif result := clean(card.result_text, RESULT_MAX):
        lines.append(result)
    url = link_url(card.link_url)
    tail = f"{clean(card.link_text, LINK_TEXT_MAX) or DEFAULT_LINK_TEXT}: {url}" if url else ""
    room = max(TEXT_MAX - (len(tail) + 1 if tail else 0), TEXT_MIN_BODY)
    body = "\n".join(lines)
    if len(body) > room:
        body = body[: room - 1].rstrip() + ELLIPSIS
    return f"{body}\n{tail}" if tail else body


def _oa_status(card: Card, buttons: list[tuple[str, str, str]]) -> dict[str, str]:
    if buttons:
        return {"status_value": "待处理", "status_bg": OA_STATUS_BG["pending"]}
    if result := clean(card.result_text, OA_STATUS_MAX):
        return {"status_value": result, "status_bg": OA_STATUS_BG["done"]}
    kind = _KIND_STATUS.get(card.kind, "通知")
    return {"status_value": kind, "status_bg": OA_STATUS_BG["notice"]}


def _oa(card: Card, url: str, value_max: int, with_content: bool) -> dict[str, Any]:
    buttons = _buttons(card.buttons)
    body: dict[str, Any] = {"title": clean(card.title, OA_TITLE_MAX) or DEFAULT_TITLE}
    rows = _rows(card)
    if rows:
        body["form"] = [{"key": f"{key}:", "value": clean(value, value_max) or EMPTY} for key, value in rows]
    content = " · ".join(
        part for part in (clean(card.subtitle, SUBTITLE_MAX), _waiting(buttons) if buttons else "") if part
    )
    if content and with_content:
        body["content"] = content
    return {
        "message_url": url,
        "head": {"bgcolor": OA_HEAD_BG, "text": clean(card.source, OA_HEAD_TEXT_MAX) or DEFAULT_TITLE},
        "body": body,
        "status_bar": _oa_status(card, buttons),
    }


def oa_size(oa: Mapping[str, Any]) -> int:
    """The UTF-8 size of the work-notification msg that carries `oa`."""
    msg = {"msgtype": "oa", "oa": oa}
    return len(json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def render_dingtalk_oa(card: Card) -> dict[str, Any]:
    """The ``oa`` object of a work notification (``{"msgtype": "oa", "oa": <this>}``):
    ``message_url`` = the link, ``head`` = {bgcolor, text: source}, ``body`` = {title, form: the
    rows (at most 6), content: subtitle and the waiting decisions}, ``status_bar`` = {status_value:
    "待处理" / the result text / the card kind, status_bg}.

    The whole msg is kept within DingTalk's 2048 bytes by cutting row values shorter and then
    dropping the content; raises CardError if the card has no usable link (``message_url`` is
    required) or the link alone is too long."""
    url = link_url(card.link_url)
    if not url:
        raise CardError("a DingTalk oa message needs a link_url (message_url)")
    oa: dict[str, Any] = {}
    for with_content in (True, False):
        for value_max in (ROW_VALUE_MAX, 64, 32, 16, 8):
            oa = _oa(card, url, value_max, with_content)
            if oa_size(oa) <= OA_MAX_BYTES:
                return oa
    raise CardError(f"the oa message is over {OA_MAX_BYTES} bytes even with the shortest texts")
