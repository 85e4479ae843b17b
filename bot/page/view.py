"""Engine data -> the plain data of the ticket page (bot.page.render.PageView). Pure.

What a viewer sees is what the loonflow API shows them: every custom field of the workflow (the
API's field_list shows them all to whoever may view the ticket), the flow log, and the actions
core.access.allowed_actions gives them. Field inputs are offered with the decisions when the
viewer handles the ticket now and the state lets them edit fields (required / optional there);
attachments are shown but not edited here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.cards.build import CHINA_TZ
from bot.page.diagram import flow_svg
from bot.page.render import Actions, Button, FieldRow, Input, LogRow, PageView
from core.access import Action, ActionKind, allowed_actions
from core.org import Org
from core.ticket import SYSTEM_USER, ActState, FlowLog, InterveneType, Ticket
from core.workflow import CHOICE_TYPES, MULTI_TYPES, Attribute, CustomField, FieldAccess, FieldType, Workflow

EMPTY = "—"
STATUS = {
    ActState.DRAFT: "草稿",
    ActState.ONGOING: "进行中",
    ActState.REJECTED: "已驳回",
    ActState.WITHDRAWN: "已撤回",
    ActState.FINISHED: "已完成",
    ActState.CLOSED: "已关闭",
}
VERBS = {
    InterveneType.DELIVER: "转交",
    InterveneType.ADD_NODE: "加签",
    InterveneType.ADD_NODE_END: "加签完成",
    InterveneType.ACCEPT: "接单",
    InterveneType.COMMENT: "评论",
    InterveneType.DELETE: "删除",
    InterveneType.CLOSE: "关闭",
    InterveneType.ALTER_STATE: "修改状态",
    InterveneType.HOOK: "自动处理",
    InterveneType.RETREAT: "撤回",
    InterveneType.UPDATE_FIELDS: "修改字段",
}
DONE_VERBS = ("接单", "完成加签", "评论", "转交", "加签", "撤回", "关闭")
"""What a successful action other than a transition is called in the flash message ("已" + verb)."""

_INPUT_KINDS = {
    FieldType.STRING: "text",
    FieldType.TEXTAREA: "textarea",
    FieldType.RICH_TEXT: "textarea",
    FieldType.INT: "number",
    FieldType.FLOAT: "number",
    FieldType.BOOL: "bool",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime-local",
    FieldType.RADIO: "select",
    FieldType.SELECT: "select",
    FieldType.CHECKBOX: "checkboxes",
    FieldType.MULTI_SELECT: "checkboxes",
    FieldType.USER: "text",
    FieldType.MULTI_USER: "text",
}


def fmt_time(value: datetime | None) -> str:
    """China time (UTC+8), as the cards show it; a naive time is UTC, as the store keeps it."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def person(org: Org, username: str) -> str:
    if username == SYSTEM_USER:
        return "系统"
    user = org.user(username)
    return f"{user.alias}({username})" if user is not None and user.alias else username


def people(org: Org, usernames: Iterable[str]) -> str:
    return "、".join(person(org, u) for u in usernames)


def _bool_label(fdef: CustomField, value: bool) -> str:
    return fdef.boolean_display.get("1" if value else "0") or ("是" if value else "否")


def display(value: Any, fdef: CustomField | None, org: Org) -> str:
    """A field value as a person reads it: choice labels, names for users, 是/否 for booleans."""
    if value is None or value == "" or value == [] or value == ():
        return EMPTY
    if fdef is not None and fdef.type == FieldType.BOOL and isinstance(value, bool):
        return _bool_label(fdef, value)
    if isinstance(value, list | tuple):
        return "、".join(display(v, fdef, org) for v in value)
    text = str(value)
    if fdef is not None and fdef.type in (FieldType.USER, FieldType.MULTI_USER):
        return person(org, text)
    if fdef is not None and fdef.choices:
        return fdef.choices.get(text, text)
    return text


def field_rows(ticket: Ticket, wf: Workflow, org: Org) -> tuple[FieldRow, ...]:
    state = wf.state(ticket.state_id)
    rows = [
        FieldRow("流水号", ticket.sn),
        FieldRow("流程", wf.name),
        FieldRow("当前状态", state.name if state is not None else str(ticket.state_id)),
    ]
    if not ticket.is_ended:
        rows.append(FieldRow("当前处理人", people(org, ticket.handlers) or EMPTY))
    rows += [
        FieldRow("创建人", person(org, ticket.creator)),
        FieldRow("创建时间", fmt_time(ticket.created_at)),
        FieldRow("更新时间", fmt_time(ticket.updated_at)),
    ]
    for fdef in sorted(wf.fields, key=lambda f: f.order_id):
        rows.append(FieldRow(fdef.name, display(ticket.fields.get(fdef.key), fdef, org)))
    return tuple(rows)


def log_rows(logs: Sequence[FlowLog], wf: Workflow, org: Org) -> tuple[LogRow, ...]:
    out = []
    for log in sorted(logs, key=lambda x: (x.created_at, x.id)):
        state = wf.state(log.state_id)
        if log.intervene_type == InterveneType.TRANSITION:
            action = log.transition_name or "处理"
        else:
            action = VERBS.get(log.intervene_type, "操作")
        out.append(
            LogRow(
                who=person(org, log.actor),
                action=action,
                state=state.name if state is not None else str(log.state_id),
                suggestion=log.suggestion,
                at=fmt_time(log.created_at),
            )
        )
    return tuple(out)


def passed_states(ticket: Ticket, logs: Iterable[FlowLog]) -> frozenset[int]:
    """The states the ticket has been handled in (its current state aside)."""
    seen = {log.state_id for log in logs} | set(ticket.last_handlers)
    return frozenset(seen - {ticket.state_id})


def _text(value: Any, fdef: CustomField) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, list | tuple):
        if fdef.type in (FieldType.CHECKBOX, FieldType.MULTI_SELECT):
            return tuple(str(v) for v in value)
        return (",".join(str(v) for v in value),)
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if fdef.type == FieldType.DATETIME:
        return (str(value).replace(" ", "T"),)
    return (str(value),)


def field_input(key: str, access: FieldAccess, ticket: Ticket, wf: Workflow) -> Input | None:
    """The input of one writable field (None for attachments and unknown keys)."""
    required = access == FieldAccess.REQUIRED
    if key == "title":
        return Input("title", "标题", "text", (ticket.title,) if ticket.title else (), required)
    fdef = wf.field_def(key)
    if fdef is None or fdef.type not in _INPUT_KINDS:
        return None
    kind = _INPUT_KINDS[fdef.type]
    choices: tuple[tuple[str, str], ...] = ()
    if fdef.type in CHOICE_TYPES:
        choices = tuple((str(k), str(v)) for k, v in fdef.choices.items())
    elif fdef.type == FieldType.BOOL:
        choices = (("true", _bool_label(fdef, True)), ("false", _bool_label(fdef, False)))
    step = {FieldType.INT: "1", FieldType.FLOAT: "any", FieldType.DATETIME: "1"}.get(fdef.type, "")
    hint = fdef.description
    if fdef.type == FieldType.USER:
        hint = hint or "填写用户名"
    elif fdef.type == FieldType.MULTI_USER:
        hint = hint or "填写用户名，多人用逗号分隔"
    return Input(
        key,
        fdef.name,
        kind,
        _text(ticket.fields.get(key), fdef),
        required,
        choices,
        fdef.placeholder,
        step,
        hint,
    )


def is_multi(fdef: CustomField | None) -> bool:
    return fdef is not None and fdef.type in MULTI_TYPES and fdef.type != FieldType.MULTI_USER


def actions_of(allowed: Sequence[Action], ticket: Ticket, wf: Workflow) -> Actions:
    decisions: list[Button] = []
    alerts: list[str] = []
    deliver = ""
    add_node = retreat = close = comment = False
    for a in allowed:
        if a.kind == ActionKind.TRANSITION:
            style = {int(Attribute.AGREE): "primary", int(Attribute.REJECT): "danger"}.get(a.attribute, "")
            decisions.append(Button(f"transition:{a.transition_id}", a.name, style, a.field_require_check))
            if a.alert_enable and a.alert_text:
                alerts.append(f"{a.name}：{a.alert_text}")
        elif a.kind == ActionKind.ACCEPT:
            decisions.append(Button("accept", a.name, "primary", validate=False))
        elif a.kind == ActionKind.ADD_NODE_END:
            decisions.append(Button("add_node_end", a.name, "primary", validate=False))
        elif a.kind == ActionKind.DELIVER:
            deliver = a.name
        elif a.kind == ActionKind.ADD_NODE:
            add_node = True
        elif a.kind == ActionKind.RETREAT:
            retreat = True
        elif a.kind == ActionKind.CLOSE:
            close = True
        elif a.kind == ActionKind.COMMENT:
            comment = True
    inputs: list[Input] = []
    state = wf.state(ticket.state_id)
    if state is not None and any(a.kind == ActionKind.TRANSITION for a in allowed):
        for key, access in state.fields.items():
            if access in (FieldAccess.REQUIRED, FieldAccess.OPTIONAL):
                item = field_input(key, access, ticket, wf)
                if item is not None:
                    inputs.append(item)
    return Actions(tuple(decisions), tuple(inputs), tuple(alerts), deliver, add_node, retreat, close, comment)


def flash_ok(message: str, wf: Workflow) -> bool:
    """Whether `message` (the `m` of a link, which is not signed) is one the page itself sends
    after a success: "已" + a transition's name or a known verb. Anything else is not shown."""
    if not message.startswith("已"):
        return False
    verb = message[1:]
    return verb in DONE_VERBS or any(t.name == verb for t in wf.transitions)


def build(
    ticket: Ticket,
    wf: Workflow,
    org: Org,
    logs: Sequence[FlowLog],
    viewer: str,
    *,
    auth: Mapping[str, str],
    expires: int | None = None,
    flash: str = "",
    flash_is_ok: bool = True,
    form_action: str = "",
) -> PageView:
    """The page of `ticket` as `viewer` sees it, with their signed link's parameters `auth`;
    `form_action` is where its forms post, relative to the URL it is shown at (default: from
    /tickets/{id})."""
    state = wf.state(ticket.state_id)
    status = "已删除" if ticket.is_deleted else STATUS.get(ticket.act_state, "")
    allowed = allowed_actions(ticket, wf, org, viewer)
    until = fmt_time(datetime.fromtimestamp(expires, UTC)) if expires else ""
    return PageView(
        ticket_id=ticket.id,
        title=ticket.title or ticket.sn,
        sn=ticket.sn,
        workflow=wf.name,
        state=state.name if state is not None else str(ticket.state_id),
        status=status,
        ended=ticket.is_ended,
        handlers="" if ticket.is_ended else people(org, ticket.handlers),
        fields=field_rows(ticket, wf, org),
        diagram=flow_svg(wf, ticket.state_id, passed_states(ticket, logs)),
        logs=log_rows(logs, wf, org),
        actions=actions_of(allowed, ticket, wf),
        viewer=person(org, viewer),
        auth=dict(auth),
        state_id=ticket.state_id,
        expires=until,
        flash=flash,
        flash_ok=flash_is_ok,
        form_action=form_action,
    )
