"""A ticket-page form (POST /tickets/{id}/act) -> the engine command to run as the viewer. Pure.

The form carries ``action`` (the button pressed) and its inputs:

==================  ===========================================================================
action              command
==================  ===========================================================================
transition:<id>     Handle, with the suggestion and the field inputs ``f.<key>`` that are filled in
accept              Accept (接单)
add_node_end        AddNodeEnd (加签完成), with the suggestion
comment             Comment (the suggestion is the text)
deliver             Deliver (转交) to ``target`` (a username, or a unique name); forced (强制转交)
                    when the viewer may intervene but does not handle the ticket now
add_node            AddNode (加签) to ``target``
retreat / close     Retreat (撤回) / Close (关闭), with the suggestion
==================  ===========================================================================

A field input left empty is not sent (the value stays as it is; the page cannot clear a value).
The engine decides everything else: permissions, required fields, value types.

Every command is pinned to ``state``, the state the page showed: Handle and Accept carry it as
`expected_state_id` (the engine then says who handled the ticket meanwhile), the others are
refused by a guard when the ticket has left that state. A comment is not pinned: it is about the
ticket, not a step of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.page.view import is_multi
from core import commands as c
from core.access import can_handle
from core.org import Org
from core.ticket import Ticket
from core.workflow import Workflow

SUGGESTION_MAX = 2000
MAX_ID = 2**63 - 1
_TRANSITION_RE = re.compile(r"transition:([1-9][0-9]{0,18})\Z", re.ASCII)
_STATE_RE = re.compile(r"[0-9]{1,19}\Z", re.ASCII)

Form = Mapping[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class Planned:
    command: c.Command
    state_id: int  # the state the page showed
    pin: bool  # refuse it (by a guard) unless the ticket is still in `state_id`
    done: str  # the verb of the flash message on success ("已" + done)


@dataclass(frozen=True, slots=True)
class Refusal:
    message: str
    status: int = 400


def first(form: Form, name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def expected_state(form: Form) -> int | None:
    raw = (first(form, "state") or "").strip()
    if not _STATE_RE.match(raw) or int(raw) > MAX_ID:
        return None
    return int(raw)


def resolve_person(org: Org, text: str) -> str | None:
    """An active user named by `text`: a username, else the one user whose name (alias) it is."""
    name = text.strip()
    if org.active(name):
        return name
    matches = [u.username for u in org.users.values() if u.is_active and u.alias and u.alias == name]
    return matches[0] if len(matches) == 1 else None


def _fields(form: Form, wf: Workflow) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, values in form.items():
        if not name.startswith("f."):
            continue
        key = name[2:]
        fdef = wf.field_def(key)
        if is_multi(fdef):
            picked = [v.strip() for v in values if v.strip()]
            if picked:
                out[key] = picked
            continue
        value = values[0].strip() if values else ""
        if value:
            out[key] = value
    return out


def plan(form: Form, ticket: Ticket, wf: Workflow, org: Org, viewer: str) -> Planned | Refusal:
    """The command the form asks for, or why it cannot be run."""
    action = (first(form, "action") or "").strip()
    state_id = expected_state(form)
    if state_id is None:
        return Refusal("表单不完整（缺少工单状态），请刷新页面后重试。")
    suggestion = (first(form, "suggestion") or "").strip()
    if len(suggestion) > SUGGESTION_MAX:
        return Refusal(f"意见太长了（{len(suggestion)} 字），最多 {SUGGESTION_MAX} 字。")
    if m := _TRANSITION_RE.match(action):
        t = wf.transition(int(m.group(1)))
        if t is None:
            return Refusal("这个操作不存在，请刷新页面后重试。")
        cmd: c.Command = c.Handle(
            viewer, t.id, fields=_fields(form, wf), suggestion=suggestion, expected_state_id=state_id
        )
        return Planned(cmd, state_id, pin=False, done=t.name)
    if action == "accept":
        return Planned(c.Accept(viewer, expected_state_id=state_id), state_id, pin=False, done="接单")
    if action == "add_node_end":
        return Planned(c.AddNodeEnd(viewer, suggestion), state_id, pin=True, done="完成加签")
    if action == "comment":
        if not suggestion:
            return Refusal("评论内容不能为空。")
        return Planned(c.Comment(viewer, suggestion), state_id, pin=False, done="评论")
    if action in ("deliver", "add_node"):
        text = (first(form, "target") or "").strip()
        if not text:
            return Refusal("请填写要转交或加签的人。")
        target = resolve_person(org, text)
        if target is None:
            return Refusal(f"找不到在职的用户“{text[:40]}”（请填写用户名，或唯一的姓名）。")
        if action == "add_node":
            return Planned(c.AddNode(viewer, target, suggestion), state_id, pin=True, done="加签")
        state = wf.state(ticket.state_id)
        forced = state is None or not can_handle(ticket, state, viewer)
        return Planned(
            c.Deliver(viewer, target, suggestion, from_admin=forced), state_id, pin=True, done="转交"
        )
    if action == "retreat":
        return Planned(c.Retreat(viewer, suggestion), state_id, pin=True, done="撤回")
    if action == "close":
        return Planned(c.Close(viewer, suggestion), state_id, pin=True, done="关闭")
    return Refusal("未知的操作，请刷新页面后重试。")
