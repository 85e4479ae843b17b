"""What a chat client shows for each message a platform delivers: pure functions from the wire
payloads (WeCom template cards, DingTalk card variables, robot / webhook / work-notification
messages) to one neutral "view" the web chat page draws with either platform's skin.

A card view is a JSON object:

    look        "wecom" | "dingtalk"                       which client draws it
    card_type   "button_interaction", "text_notice", ... (WeCom) | "interactive", "oa",
                "link", "action_card", "feed_card", "image" (DingTalk)
    source      the line above the title ("" for none)
    title, desc the main title and the line under it
    sub_title   WeCom's sub_title_text; DingTalk's markdown body of robot action cards
    emphasis    {"title", "desc"} | None                   WeCom emphasis_content
    quote       {"title", "text", "url"} | None            WeCom quote_area
    rows        [{"key", "value", "url"}]                  key-value rows; url "" when not a link
    body        {"text", "format": "plain" | "markdown"} | None   free text (link / action cards, oa)
    buttons     [{"text", "key", "style", "url"}]          clickable now; empty once decided
    result      the decision shown greyed where the buttons were, or None
    links       [{"text", "url"}]                          "查看详情" and other links
    status      {"text", "color"} | None                   a work notification's status bar

`key` of a button is what /_chat/click takes back: the WeCom button key, or the DingTalk button's
action value (btnN_action). `style` is "primary", "danger", "outline" or "default".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

JSON = dict[str, Any]

DETAILS = "查看详情"
DONE = "已处理"
# WeCom documents styles 1..4 without naming them; the page draws them as the client does:
# 1 blue, 2 red, 3 white with a blue border, 4 grey
WECOM_STYLES = {1: "primary", 2: "danger", 3: "outline", 4: "default"}
DINGTALK_STYLES = frozenset({"primary", "danger", "default"})
DINGTALK_SLOTS = 6


def _s(value: object) -> str:
    """A value as display text ("" for None and containers)."""
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def empty_card(look: str, card_type: str) -> JSON:
    return {
        "look": look,
        "card_type": card_type,
        "source": "",
        "title": "",
        "desc": "",
        "sub_title": "",
        "emphasis": None,
        "quote": None,
        "rows": [],
        "body": None,
        "buttons": [],
        "result": None,
        "links": [],
        "status": None,
    }


def text_view(text: str, *, markdown: bool = False, title: str = "") -> JSON:
    """The content of a text entry."""
    return {"text": text, "format": "markdown" if markdown else "plain", "title": title}


# ---------------------------------------------------------------- WeCom


def wecom_card(
    template_card: Mapping[str, Any],
    *,
    replace_name: str | None = None,
    name_of: Callable[[str], str] | None = None,
) -> JSON:
    """A WeCom template_card as the client draws it. `replace_name` is the text an update by
    {"button": {"replace_name"}} put in place of the buttons; a card carrying ``replace_text``
    shows that greyed instead of its buttons. `name_of` turns a userid (type-3 rows) into a name."""
    tc = template_card
    view = empty_card("wecom", _s(tc.get("card_type")) or "text_notice")
    view["source"] = _s(_obj(tc.get("source")).get("desc"))
    main = _obj(tc.get("main_title"))
    view["title"], view["desc"] = _s(main.get("title")), _s(main.get("desc"))
    view["sub_title"] = _s(tc.get("sub_title_text"))
    emphasis = _obj(tc.get("emphasis_content"))
    if emphasis:
        view["emphasis"] = {"title": _s(emphasis.get("title")), "desc": _s(emphasis.get("desc"))}
    quote = _obj(tc.get("quote_area"))
    if quote:
        view["quote"] = {
            "title": _s(quote.get("title")),
            "text": _s(quote.get("quote_text")),
            "url": _s(quote.get("url")) if quote.get("type") == 1 else "",
        }
    for item in _list(tc.get("horizontal_content_list")):
        row = _obj(item)
        value = _s(row.get("value"))
        url = ""
        if row.get("type") == 1:
            url = _s(row.get("url"))
        elif row.get("type") == 3:
            userid = _s(row.get("userid"))
            value = (name_of(userid) if name_of else "") or userid or value
        view["rows"].append({"key": _s(row.get("keyname")), "value": value, "url": url})
    result = replace_name or _s(tc.get("replace_text")) or None
    if result is None:
        for item in _list(tc.get("button_list")):
            button = _obj(item)
            style = button.get("style", 1)
            view["buttons"].append(
                {
                    "text": _s(button.get("text")),
                    "key": _s(button.get("key")),
                    "style": WECOM_STYLES.get(style if isinstance(style, int) else 1, "primary"),
                    "url": _s(button.get("url")) if button.get("type") == 1 else "",
                }
            )
    view["result"] = result
    for item in _list(tc.get("jump_list")):
        jump = _obj(item)
        if jump.get("type", 1) == 1 and jump.get("url"):
            view["links"].append({"text": _s(jump.get("title")) or DETAILS, "url": _s(jump.get("url"))})
    action = _obj(tc.get("card_action"))
    if action.get("type") == 1 and action.get("url"):
        view["links"].append({"text": DETAILS, "url": _s(action.get("url"))})
    return view


# ---------------------------------------------------------------- DingTalk interactive cards


def dingtalk_params_for(params: Mapping[str, str], private: Mapping[str, Any], userid: str) -> dict[str, str]:
    """The variables `userid` sees: the public cardParamMap, overridden by their private data."""
    mine = _obj(_obj(private.get(userid)).get("cardParamMap"))
    return {**params, **{str(k): _s(v) for k, v in mine.items()}}


def _rows(raw: str) -> list[JSON]:
    try:
        items = json.loads(raw) if raw else []
    except (ValueError, RecursionError):
        return []
    rows: list[JSON] = []
    for item in _list(items):
        row = _obj(item)
        if row:
            rows.append({"key": _s(row.get("key")), "value": _s(row.get("value")), "url": ""})
    return rows


def dingtalk_card(params: Mapping[str, str]) -> JSON:
    """An instance of ticketbot's DingTalk card template (config/dingtalk/card_template.json) as
    the client draws it: buttons while ``status`` is "pending" (slot N when btnN_style is
    primary / danger / default), ``result_text`` greyed once it is "done" (or set, with any other
    status), the link "查看详情" (``link_text``) when ``link_url`` is set."""
    view = empty_card("dingtalk", "interactive")
    view["source"] = params.get("source", "")
    view["title"] = params.get("title", "")
    view["desc"] = params.get("subtitle", "")
    view["rows"] = _rows(params.get("rows", ""))
    status = params.get("status", "")
    result = params.get("result_text", "")
    if status == "pending":
        for n in range(1, DINGTALK_SLOTS + 1):
            style = params.get(f"btn{n}_style", "")
            if style in DINGTALK_STYLES:
                view["buttons"].append(
                    {
                        "text": params.get(f"btn{n}_text", ""),
                        "key": params.get(f"btn{n}_action", ""),
                        "style": style,
                        "url": "",
                    }
                )
    elif status == "done" or result:
        view["result"] = result or None
    if url := params.get("link_url", ""):
        view["links"].append({"text": params.get("link_text", "") or DETAILS, "url": url})
    return view


def dingtalk_slot(params: Mapping[str, str], key: str) -> int | None:
    """The button slot (1..6) whose action is `key`, if the card shows that button now."""
    if not key or params.get("status") != "pending":
        return None
    for n in range(1, DINGTALK_SLOTS + 1):
        if params.get(f"btn{n}_style", "") in DINGTALK_STYLES and params.get(f"btn{n}_action") == key:
            return n
    return None


# ---------------------------------------------------------------- DingTalk messages


def _markdown_card(card_type: str, title: str, text: str, links: list[JSON]) -> JSON:
    view = empty_card("dingtalk", card_type)
    view["title"] = title
    view["body"] = {"text": text, "format": "markdown"}
    view["links"] = [link for link in links if link["url"]]
    return view


def _action_links(data: Mapping[str, Any], title_key: str, url_key: str) -> list[JSON]:
    return [
        {"text": _s(data.get(f"{title_key}{n}")) or DETAILS, "url": _s(data.get(f"{url_key}{n}"))}
        for n in range(1, 7)
        if data.get(f"{url_key}{n}")
    ]


def dingtalk_robot_message(msg_key: str, param: Mapping[str, Any]) -> tuple[str, JSON]:
    """("text", text content) or ("card", card view) for a robot batchSend message."""
    if msg_key == "sampleText":
        return "text", text_view(_s(param.get("content")))
    if msg_key == "sampleMarkdown":
        return "text", text_view(_s(param.get("text")), markdown=True, title=_s(param.get("title")))
    if msg_key == "sampleLink":
        link = {"text": DETAILS, "url": _s(param.get("messageUrl"))}
        return "card", _markdown_card("link", _s(param.get("title")), _s(param.get("text")), [link])
    if msg_key == "sampleImageMsg":
        link = {"text": "查看图片", "url": _s(param.get("photoURL"))}
        return "card", _markdown_card("image", "[图片]", "", [link])
    if msg_key == "sampleActionCard":
        link = {"text": _s(param.get("singleTitle")) or DETAILS, "url": _s(param.get("singleURL"))}
        return "card", _markdown_card("action_card", _s(param.get("title")), _s(param.get("text")), [link])
    links = _action_links(param, "actionTitle", "actionURL")
    return "card", _markdown_card("action_card", _s(param.get("title")), _s(param.get("text")), links)


def _plain_message(msgtype: str, part: Mapping[str, Any]) -> tuple[str, JSON] | None:
    """text, markdown and link: the same fields in a webhook reply and a work notification."""
    if msgtype == "text":
        return "text", text_view(_s(part.get("content")))
    if msgtype == "markdown":
        return "text", text_view(_s(part.get("text")), markdown=True, title=_s(part.get("title")))
    if msgtype == "link":
        link = {"text": DETAILS, "url": _s(part.get("messageUrl"))}
        return "card", _markdown_card("link", _s(part.get("title")), _s(part.get("text")), [link])
    return None


def dingtalk_webhook_message(body: Mapping[str, Any]) -> tuple[str, JSON]:
    """("text", ...) or ("card", ...) for a reply posted to a session webhook."""
    msgtype = _s(body.get("msgtype"))
    part = _obj(body.get(msgtype))
    if (plain := _plain_message(msgtype, part)) is not None:
        return plain
    if msgtype == "actionCard":
        links = [{"text": _s(part.get("singleTitle")) or DETAILS, "url": _s(part.get("singleURL"))}]
        links += [
            {"text": _s(_obj(b).get("title")) or DETAILS, "url": _s(_obj(b).get("actionURL"))}
            for b in _list(part.get("btns"))
        ]
        return "card", _markdown_card("action_card", _s(part.get("title")), _s(part.get("text")), links)
    if msgtype == "feedCard":
        links = [
            {"text": _s(_obj(i).get("title")) or DETAILS, "url": _s(_obj(i).get("messageURL"))}
            for i in _list(part.get("links"))
        ]
        return "card", _markdown_card("feed_card", "", "", links)
    return "text", text_view(f"[{msgtype or '?'} message]")


def dingtalk_work_notice(
    msg: Mapping[str, Any], status_bar: Mapping[str, str] | None = None
) -> tuple[str, JSON]:
    """("text", ...) or ("card", ...) for a work notification; `status_bar` = the latest
    {"status_value", "status_bg"} an update set (an ``oa`` message's own one otherwise)."""
    msgtype = _s(msg.get("msgtype"))
    part = _obj(msg.get(msgtype))
    if (plain := _plain_message(msgtype, part)) is not None:
        return plain
    if msgtype == "action_card":
        links = [{"text": _s(part.get("single_title")) or DETAILS, "url": _s(part.get("single_url"))}]
        links += [
            {"text": _s(_obj(b).get("title")) or DETAILS, "url": _s(_obj(b).get("action_url"))}
            for b in _list(part.get("btn_json_list"))
        ]
        return "card", _markdown_card("action_card", _s(part.get("title")), _s(part.get("markdown")), links)
    if msgtype != "oa":
        return "text", text_view(f"[{msgtype or '?'} 工作通知]")
    view = empty_card("dingtalk", "oa")
    view["source"] = _s(_obj(part.get("head")).get("text"))
    body = _obj(part.get("body"))
    view["title"] = _s(body.get("title"))
    view["rows"] = [
        {"key": _s(_obj(f).get("key")).rstrip(":："), "value": _s(_obj(f).get("value")), "url": ""}
        for f in _list(body.get("form"))
    ]
    if content := _s(body.get("content")):
        view["body"] = {"text": content, "format": "plain"}
    bar = status_bar if status_bar is not None else _obj(part.get("status_bar"))
    if value := _s(bar.get("status_value")):
        view["status"] = {"text": value, "color": _argb(_s(bar.get("status_bg")))}
    if url := _s(part.get("message_url")) or _s(part.get("pc_message_url")):
        view["links"].append({"text": DETAILS, "url": url})
    return "card", view


def _argb(value: str) -> str:
    """DingTalk's "0xFFFF9200" / "FFFF9200" (ARGB) as CSS "#FF9200"; "" if it is not one."""
    digits = value[2:] if value.lower().startswith("0x") else value
    if len(digits) == 8 and all(c in "0123456789abcdefABCDEF" for c in digits):
        return "#" + digits[2:].upper()
    return ""
