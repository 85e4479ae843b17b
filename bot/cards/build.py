"""Pure builders: engine data (ticket, workflow, org, allowed actions, flow log) -> `Card`.

No I/O, no clock (the caller passes `now`), no platform. Texts are complete here; each renderer
truncates them to its platform's limits.

Rows: the workflow's key fields (`workflow.display_fields` if set, else the first 4 custom fields
that have a value), at most 4, then 申请人 and 当前状态, so a card has at most 6 rows. Values are
rendered for people: choice labels, user aliases, the field's boolean display, lists joined by "、".

Buttons: only the decisions a card can take in one click: TRANSITION (agree -> primary, reject ->
danger, other -> default), ACCEPT ("接单", primary) and ADD_NODE_END ("完成", primary), in the order
`allowed_actions()` gives them. Deliver, add-node, comment, ... need input and live on the linked
ticket page. If there are more than 6 such buttons, the card keeps the first 5 and adds no "more"
button: the rest are on the ticket page that the card links to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from bot.cards.model import Button, ButtonStyle, Card, CardKind, Row, base36, encode_action
from core.access import Action, ActionKind
from core.org import Org
from core.ticket import SYSTEM_USER, ActState, FlowLog, InterveneType, Ticket
from core.workflow import CHOICE_TYPES, Attribute, CustomField, FieldType, Workflow

CHINA_TZ = timezone(timedelta(hours=8), "CST")
DEFAULT_SOURCE = "工单助手"
MAX_KEY_FIELDS = 4
MAX_BUTTONS = 6
BUTTONS_IF_TOO_MANY = 5
LIST_SEP = "、"
EMPTY = "—"
CARD_ACTIONS = frozenset({ActionKind.TRANSITION, ActionKind.ACCEPT, ActionKind.ADD_NODE_END})

_BUILTIN_FIELDS = {"sn": "工单号", "title": "标题", "created_at": "创建时间"}
_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")
_VERBS = {
    InterveneType.ACCEPT: "已接单",
    InterveneType.DELIVER: "已转交",
    InterveneType.ADD_NODE: "已加签",
    InterveneType.ADD_NODE_END: "已完成加签",
    InterveneType.COMMENT: "已评论",
    InterveneType.DELETE: "已删除",
    InterveneType.CLOSE: "已关闭",
    InterveneType.ALTER_STATE: "已修改状态",
    InterveneType.HOOK: "已自动处理",
    InterveneType.RETREAT: "已撤回",
    InterveneType.UPDATE_FIELDS: "已修改字段",
}
_ATTRIBUTE_VERBS = {int(Attribute.AGREE): "已同意", int(Attribute.REJECT): "已拒绝"}
_ENDED_TEXT = {
    ActState.FINISHED: "已完成",
    ActState.CLOSED: "已关闭",
    ActState.REJECTED: "已拒绝",
    ActState.WITHDRAWN: "已撤回",
}


# --- people and values ----------------------------------------------------------------------------


def alias(org: Org, username: str) -> str:
    """The display name of a user: alias, else username; "系统" for the engine itself."""
    if username == SYSTEM_USER:
        return "系统"
    user = org.user(username)
    return (user.alias if user is not None and user.alias else "") or username


def _items(value: Any) -> list[Any]:
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    return [value]


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true"}
    return bool(value)


def _plain(text: str) -> str:
    return _SPACE_RE.sub(" ", text).strip()


def display_value(field: CustomField, value: Any, org: Org) -> str:
    """A field value as a person reads it; "" for an empty value."""
    if value is None or value == "" or value == [] or value == ():
        return ""
    t = field.type
    if t == FieldType.BOOL:
        flag = _truthy(value)
        return field.boolean_display.get("1" if flag else "0") or ("是" if flag else "否")
    if t in CHOICE_TYPES:
        items = _items(value) if t in (FieldType.CHECKBOX, FieldType.MULTI_SELECT) else [value]
        return LIST_SEP.join(str(field.choices.get(str(i), i)) for i in items)
    if t in (FieldType.USER, FieldType.MULTI_USER):
        return LIST_SEP.join(alias(org, str(u)) for u in _items(value))
    if t == FieldType.ATTACHMENT:
        files = list(value) if isinstance(value, list | tuple) else [value]
        return LIST_SEP.join(str(i).rstrip("/").rsplit("/", 1)[-1] for i in files)
    if t in (FieldType.INT, FieldType.FLOAT):
        return _number(value)
    if t == FieldType.RICH_TEXT:
        return _plain(_TAG_RE.sub(" ", str(value)))
    if isinstance(value, list | tuple):
        return LIST_SEP.join(str(i) for i in value)
    return _plain(str(value))


def _builtin_row(key: str, ticket: Ticket, tz: tzinfo) -> Row | None:
    if key == "sn":
        return Row(_BUILTIN_FIELDS[key], ticket.sn or EMPTY)
    if key == "title":
        return Row(_BUILTIN_FIELDS[key], ticket.title or EMPTY)
    if key == "created_at":
        return Row(_BUILTIN_FIELDS[key], _local(ticket.created_at, tz).strftime("%Y-%m-%d %H:%M"))
    return None


def key_rows(ticket: Ticket, workflow: Workflow, org: Org, *, tz: tzinfo = CHINA_TZ) -> tuple[Row, ...]:
    """The key-field rows (at most 4). Declared display fields show "—" when empty; unknown keys
    are skipped. Without display fields, the first 4 custom fields (by order_id) with a value."""
    rows: list[Row] = []
    if workflow.display_fields:
        for key in workflow.display_fields:
            f = workflow.field_def(key)
            if f is not None:
                rows.append(Row(f.name, display_value(f, ticket.fields.get(key), org) or EMPTY))
            elif (row := _builtin_row(key, ticket, tz)) is not None:
                rows.append(row)
            if len(rows) == MAX_KEY_FIELDS:
                break
        return tuple(rows)
    for f in sorted(workflow.fields, key=lambda f: f.order_id):
        text = display_value(f, ticket.fields.get(f.key), org)
        if text:
            rows.append(Row(f.name, text))
            if len(rows) == MAX_KEY_FIELDS:
                break
    return tuple(rows)


def _rows(ticket: Ticket, workflow: Workflow, org: Org, tz: tzinfo) -> tuple[Row, ...]:
    return (
        *key_rows(ticket, workflow, org, tz=tz),
        Row("申请人", alias(org, ticket.creator)),
        Row("当前状态", state_name(ticket, workflow)),
    )


def state_name(ticket: Ticket, workflow: Workflow) -> str:
    state = workflow.state(ticket.state_id)
    return state.name if state is not None else f"未知状态 #{ticket.state_id}"


def title(ticket: Ticket, workflow: Workflow) -> str:
    return f"{workflow.name}: {ticket.title or f'#{ticket.id}'}"


# --- time ---------------------------------------------------------------------------------------------


def _local(when: datetime, tz: tzinfo) -> datetime:
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).astimezone(tz)


def waited(since: datetime | None, now: datetime) -> str:
    """How long something has waited, coarsely: "刚刚", "5分钟", "3小时", "2天"; "" if unknown."""
    if since is None:
        return ""
    seconds = (_local(now, UTC) - _local(since, UTC)).total_seconds()
    if seconds < 0:
        return ""
    if seconds < 60:
        return "刚刚"
    if seconds < 3600:
        return f"{int(seconds // 60)}分钟"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)}小时"
    return f"{int(seconds // 86400)}天"


def _when(at: datetime, now: datetime, tz: tzinfo) -> str:
    local = _local(at, tz)
    same_year = local.year == _local(now, tz).year
    return local.strftime("%m-%d %H:%M" if same_year else "%Y-%m-%d %H:%M")


# --- buttons ------------------------------------------------------------------------------------------


def _style(action: Action) -> ButtonStyle:
    if action.kind != ActionKind.TRANSITION:
        return ButtonStyle.PRIMARY  # 接单 / 完成
    if action.attribute == Attribute.AGREE:
        return ButtonStyle.PRIMARY
    if action.attribute == Attribute.REJECT:
        return ButtonStyle.DANGER
    return ButtonStyle.DEFAULT


def _label(action: Action) -> str:
    if action.name:
        return action.name
    if action.kind == ActionKind.ACCEPT:
        return "接单"
    if action.kind == ActionKind.ADD_NODE_END:
        return "完成"
    return {int(Attribute.AGREE): "同意", int(Attribute.REJECT): "拒绝"}.get(action.attribute, "处理")


def card_buttons(ticket: Ticket, actions: Iterable[Action], nonce: str) -> tuple[Button, ...]:
    """One button per one-click decision in `actions`; at most 6 (the first 5 if there are more)."""
    buttons = tuple(
        Button(
            _label(a),
            encode_action(ticket.id, ticket.state_id, a.kind, a.transition_id, nonce),
            _style(a),
        )
        for a in actions
        if a.kind in CARD_ACTIONS
    )
    return buttons if len(buttons) <= MAX_BUTTONS else buttons[:BUTTONS_IF_TOO_MANY]


def default_nonce(ticket: Ticket) -> str:
    return base36(ticket.version)


# --- cards --------------------------------------------------------------------------------------------


def _pending_subtitle(ticket: Ticket, org: Org, viewer: str, actions: Sequence[Action]) -> str:
    kinds = {a.kind for a in actions}
    if ActionKind.ADD_NODE_END in kinds or (ticket.in_add_node and viewer == ticket.add_node_target):
        return f"{alias(org, ticket.add_node_man)} 请你加签"
    if ActionKind.ACCEPT in kinds:
        return "待你接单"
    return "待你处理"


def pending_card(
    ticket: Ticket,
    workflow: Workflow,
    org: Org,
    viewer: str,
    actions: Sequence[Action],
    *,
    link_url: str,
    now: datetime,
    nonce: str | None = None,
    source: str = DEFAULT_SOURCE,
    tz: tzinfo = CHINA_TZ,
) -> Card:
    """A card asking `viewer` for a decision. `actions` is allowed_actions(ticket, workflow, org,
    viewer); the nonce defaults to the ticket version in base36."""
    subtitle = _pending_subtitle(ticket, org, viewer, actions)
    w = waited(ticket.state_entered_at, now)
    if w and w != "刚刚":
        subtitle += f" · 已等待{w}"
    return Card(
        kind=CardKind.PENDING,
        title=title(ticket, workflow),
        subtitle=subtitle,
        rows=_rows(ticket, workflow, org, tz),
        buttons=card_buttons(ticket, actions, default_nonce(ticket) if nonce is None else nonce),
        link_url=link_url,
        source=source,
        ticket_id=ticket.id,
        state_id=ticket.state_id,
        version=ticket.version,
    )


def urge_card(
    ticket: Ticket,
    workflow: Workflow,
    org: Org,
    viewer: str,
    actions: Sequence[Action],
    *,
    urger: str,
    link_url: str,
    now: datetime,
    nonce: str | None = None,
    source: str = DEFAULT_SOURCE,
    tz: tzinfo = CHINA_TZ,
) -> Card:
    """催办: the pending card again, with "{urger} 催办了此工单" as its subtitle."""
    pending = pending_card(
        ticket, workflow, org, viewer, actions, link_url=link_url, now=now, nonce=nonce, source=source, tz=tz
    )
    return replace(pending, kind=CardKind.URGE, subtitle=f"{alias(org, urger)} 催办了此工单")


def cc_card(
    ticket: Ticket,
    workflow: Workflow,
    org: Org,
    *,
    link_url: str,
    source: str = DEFAULT_SOURCE,
    tz: tzinfo = CHINA_TZ,
) -> Card:
    """抄送: a read-only notice with a link to the ticket; never buttons."""
    return Card(
        kind=CardKind.CC,
        title=title(ticket, workflow),
        subtitle=f"{alias(org, ticket.creator)} 的工单抄送给你，仅供知悉",
        rows=_rows(ticket, workflow, org, tz),
        link_url=link_url,
        source=source,
        ticket_id=ticket.id,
        state_id=ticket.state_id,
        version=ticket.version,
    )


def result_verb(log: FlowLog) -> str:
    """ "已同意", "已拒绝", "已提交", "已接单", ... for one flow-log entry."""
    if log.intervene_type == InterveneType.TRANSITION:
        name = log.transition_name.strip()
        if name:
            return name if name.startswith("已") else f"已{name}"
        return _ATTRIBUTE_VERBS.get(log.attribute, "已处理")
    return _VERBS.get(log.intervene_type, "已处理")


def result_text(
    ticket: Ticket, org: Org, last: FlowLog | None, *, now: datetime, tz: tzinfo = CHINA_TZ
) -> str:
    """ "已同意 · 王强 · 11-21 14:05" from the last action (the year is shown when it is not this
    year's); without a log entry, what the ticket's state says."""
    if last is not None:
        return " · ".join((result_verb(last), alias(org, last.actor), _when(last.created_at, now, tz)))
    if ticket.is_deleted:
        return "已删除"
    return _ENDED_TEXT.get(ticket.act_state, "已处理")


def _result_subtitle(ticket: Ticket, org: Org) -> str:
    if ticket.is_deleted:
        return "工单已删除"
    if ticket.is_ended:
        return "工单已结束"
    handlers = ticket.handlers
    if not handlers:
        return "工单处理中"
    names = LIST_SEP.join(alias(org, h) for h in handlers[:3])
    more = f" 等{len(handlers)}人" if len(handlers) > 3 else ""
    return f"当前处理人: {names}{more}"


def result_card(
    ticket: Ticket,
    workflow: Workflow,
    org: Org,
    last: FlowLog | None,
    *,
    link_url: str,
    now: datetime,
    source: str = DEFAULT_SOURCE,
    tz: tzinfo = CHINA_TZ,
) -> Card:
    """A decided / updated card: the ticket as it is now, no buttons, and the last action as
    result text (shown greyed where the buttons were). `last` is the newest flow-log entry."""
    return Card(
        kind=CardKind.RESULT,
        title=title(ticket, workflow),
        subtitle=_result_subtitle(ticket, org),
        rows=_rows(ticket, workflow, org, tz),
        link_url=link_url,
        source=source,
        result_text=result_text(ticket, org, last, now=now, tz=tz),
        ticket_id=ticket.id,
        state_id=ticket.state_id,
        version=ticket.version,
    )


def info_card(
    title_text: str,
    text: str = "",
    *,
    link_url: str,
    rows: Sequence[Row] = (),
    source: str = DEFAULT_SOURCE,
    ticket_id: int = 0,
) -> Card:
    """A plain notice (INFO): a title, a line of text, optional rows and a link."""
    return Card(
        kind=CardKind.INFO,
        title=title_text,
        subtitle=text,
        rows=tuple(rows),
        link_url=link_url,
        source=source,
        ticket_id=ticket_id,
    )
