"""Pure serializers: core objects -> the JSON shapes of loonflow's ticket API (seed 001).

Every function here is pure (no I/O, no clock): the routes load the ticket, its workflow (the
version the ticket is pinned to) and the org snapshot, and pass them in.

Shape decisions, where ticketbot's model differs from loonflow's tables:

- Times are "YYYY-MM-DD HH:MM:SS" in UTC (loonflow prints the server's local time).
- `participant` is the comma-joined usernames of the people who may act now, `participant_name`
  the same list and `participant_alias` their display names. ticketbot resolves departments, roles,
  variables and fields to people when a ticket enters a state (loonflow does so for variables and
  fields, but keeps a department or role id), so `participant_type_id` describes those people:
  1 one person, 2 several, 0 nobody (ended, or all have voted), 10 a hook. While a ticket is out
  for consultation (加签) the participant is the consulted person (type 1), as in loonflow.
- A flow log's `participant_type_id` is 1 (person) when the actor is a user of the directory, else
  the engine's actor type (0 for the system's timers and sub-ticket advances, 10 for hooks): loonflow
  also records people as type 1 whatever the state's participant type was.
- Log entries without a transition are named as loonflow r2.0.20 names them (转交操作, 加签操作, ...);
  the types loonflow lacks are 删除操作 (6) and 修改字段操作 (11, ticketbot logs field edits).
- Departments and workflow states have no creator or timestamps in ticketbot: `creator` is "",
  `gmt_created` / `gmt_modified` are "" and `creator_info` is {creator_id: 0, creator_alias: ""}.
- The built-in field `state_id` has field_type_id 10 (int), matching its value (loonflow says 5).
- A hook state's `participant` in `state_info` is "hook", as loonflow shows it (never the hook's
  URL or token).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from core.access import Action, ActionKind, can_handle
from core.org import Department, Org
from core.ticket import ENDED, FlowLog, InterveneType, Ticket
from core.workflow import (
    PARTICIPANT_TYPE_NAMES,
    Attribute,
    CustomField,
    Distribute,
    FieldAccess,
    FieldType,
    ParticipantType,
    State,
    Workflow,
)

Json = dict[str, Any]

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
UNKNOWN_STATE = "未知状态"
UNKNOWN_ACTION = "未知操作"

INTERVENE_NAMES: Mapping[int, str] = {
    InterveneType.DELIVER: "转交操作",
    InterveneType.ADD_NODE: "加签操作",
    InterveneType.ADD_NODE_END: "加签完成操作",
    InterveneType.ACCEPT: "接单操作",
    InterveneType.COMMENT: "新增评论",
    InterveneType.DELETE: "删除操作",
    InterveneType.CLOSE: "强制关闭",
    InterveneType.ALTER_STATE: "强制修改状态",
    InterveneType.HOOK: "hook操作",
    InterveneType.RETREAT: "撤回操作",
    InterveneType.UPDATE_FIELDS: "修改字段操作",
}


def fmt_time(value: datetime | None) -> str:
    """ "YYYY-MM-DD HH:MM:SS" in UTC ("" for None). Naive datetimes are taken as UTC."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(TIME_FORMAT)


def _names(org: Org, usernames: Iterable[str]) -> tuple[str, str]:
    """(usernames, aliases), each comma-joined; an unknown user's alias is the username."""
    names = list(usernames)
    aliases = []
    for name in names:
        user = org.user(name)
        aliases.append(user.alias if user is not None and user.alias else name)
    return ",".join(names), ",".join(aliases)


def _state_name(wf: Workflow | None, state_id: int) -> str:
    state = wf.state(state_id) if wf is not None else None
    return state.name if state is not None else UNKNOWN_STATE


def current_participant_type(ticket: Ticket) -> int:
    """The participant type of the people who may act now: 10 a hook, 0 nobody, 1 one person,
    2 several people."""
    if ticket.participant_type == ParticipantType.HOOK and not ticket.is_ended:
        return int(ParticipantType.HOOK)
    handlers = ticket.handlers
    if not handlers:
        return int(ParticipantType.NONE)
    return int(ParticipantType.PERSON if len(handlers) == 1 else ParticipantType.PEOPLE)


def participant_info(ticket: Ticket, org: Org) -> Json:
    """The list item's {participant_type_id, participant, participant_name, participant_type_name,
    participant_alias} for the people who may act now."""
    ptype = current_participant_type(ticket)
    names, aliases = _names(org, ticket.handlers)
    return {
        "participant_type_id": ptype,
        "participant": names,
        "participant_name": names,
        "participant_type_name": PARTICIPANT_TYPE_NAMES.get(ptype, ""),
        "participant_alias": aliases,
    }


def list_item(ticket: Ticket, wf: Workflow | None, org: Org) -> Json:
    """One item of GET /tickets."""
    return {
        "participant_info": participant_info(ticket, org),
        "gmt_created": fmt_time(ticket.created_at),
        "parent_ticket_state_id": ticket.parent_ticket_state_id,
        "state": {"state_name": _state_name(wf, ticket.state_id), "state_id": ticket.state_id},
        "creator": ticket.creator,
        "parent_ticket_id": ticket.parent_ticket_id,
        "title": ticket.title,
        "gmt_modified": fmt_time(ticket.updated_at),
        "workflow": {
            "workflow_name": wf.name if wf is not None else "",
            "workflow_id": ticket.workflow_id,
        },
        "sn": ticket.sn,
        "id": ticket.id,
        "act_state_id": int(ticket.act_state),
    }


# --- detail ---------------------------------------------------------------------------------------


def dept_info(dept: Department | None, org: Org) -> Json:
    """A department as loonflow's LoonDept.get_dict() (all keys present, empty values when none)."""
    if dept is None:
        dept = Department(id=0, name="")
    parent = org.departments.get(dept.parent_id) if dept.parent_id else None
    leader = org.user(dept.leader) if dept.leader else None
    approvers = []
    for name in dept.approvers:
        user = org.user(name)
        approvers.append({"approver_name": name, "approver_alias": user.alias if user is not None else name})
    return {
        "id": dept.id,
        "name": dept.name,
        "leader": dept.leader,
        "approver": ",".join(dept.approvers),
        "parent_dept_id": dept.parent_id,
        "parent_dept_info": {
            "parent_dept_name": parent.name if parent is not None else "",
            "parent_dept_id": dept.parent_id,
        },
        "leader_info": {
            "leader_username": dept.leader,
            "leader_alias": leader.alias if leader is not None else dept.leader,
        },
        "approver_info": approvers,
        "creator_info": {"creator_id": 0, "creator_alias": ""},
        "label": "",
        "is_deleted": False,
        "creator": "",
        "gmt_created": "",
        "gmt_modified": "",
    }


def creator_info(username: str, org: Org) -> Json:
    user = org.user(username)
    if user is None:
        return {
            "email": "",
            "alias": "",
            "dept_info": dept_info(None, org),
            "username": username,
            "phone": "",
            "is_active": False,
        }
    dept = org.departments.get(user.dept_ids[0]) if user.dept_ids else None
    return {
        "email": user.email,
        "alias": user.alias,
        "dept_info": dept_info(dept, org),
        "username": user.username,
        "phone": user.phone,
        "is_active": user.is_active,
    }


def _state_participant(state: State) -> str:
    p = state.participant
    return "hook" if p.type == ParticipantType.HOOK else p.value


def state_info(state: State | None, state_id: int, wf: Workflow | None) -> Json:
    """A state as loonflow's state record (state_field_str and label decoded to objects)."""
    if state is None:
        state = State(id=state_id, name=UNKNOWN_STATE)
    return {
        "id": state.id,
        "creator": "",
        "gmt_created": "",
        "gmt_modified": "",
        "is_deleted": False,
        "name": state.name,
        "workflow_id": wf.id if wf is not None else 0,
        "is_hidden": state.is_hidden,
        "order_id": state.order_id,
        "type_id": int(state.type),
        "enable_retreat": state.enable_retreat,
        "remember_last_man_enable": state.remember_last_man,
        "participant_type_id": int(state.participant.type),
        "participant": _state_participant(state),
        "distribute_type_id": int(state.distribute),
        "state_field_str": {k: int(v) for k, v in state.fields.items()},
        "label": dict(state.label),
    }


def _field(
    key: str,
    name: str,
    value: Any,
    order_id: int,
    attribute: int,
    *,
    description: str = "",
    type_id: int = int(FieldType.STRING),
    default: Any = None,
    choice: Mapping[str, str] | None = None,
    boolean_display: Mapping[str, str] | None = None,
    label: Mapping[str, Any] | None = None,
    placeholder: str = "",
) -> Json:
    return {
        "field_key": key,
        "field_name": name,
        "field_type_id": type_id,
        "field_value": value,
        "field_attribute": attribute,
        "order_id": order_id,
        "default_value": default,
        "description": description,
        "field_template": "",
        "boolean_field_display": dict(boolean_display or {}),
        "field_choice": dict(choice or {}),
        "label": dict(label or {}),
        "placeholder": placeholder,
    }


def _json_value(value: Any) -> Any:
    """A stored field value as JSON (they are stored JSON-ready; tuples become lists)."""
    if isinstance(value, tuple):
        return list(value)
    return value


def _built_in_type(value: Any) -> int:
    """5 (string) for the built-in fields, 10 (int) for state_id (loonflow says 5 with an int value)."""
    return int(FieldType.INT if isinstance(value, int) else FieldType.STRING)


def field_list(ticket: Ticket, wf: Workflow | None, org: Org, viewer: str) -> list[Json]:
    """loonflow's built-in fields plus every custom field of the workflow, by order_id.

    `field_attribute` comes from the current state's permissions only for a viewer who may handle
    the ticket now (core.access.can_handle); everyone else gets 1 (read-only) for every field."""
    state = wf.state(ticket.state_id) if wf is not None else None
    handler = state is not None and can_handle(ticket, state, viewer)

    def attribute(key: str) -> int:
        if not handler or state is None:
            return int(FieldAccess.READ_ONLY)
        return int(state.fields.get(key, FieldAccess.READ_ONLY))

    current = participant_info(ticket, org)
    built_in = [
        ("sn", "流水号", ticket.sn, 10, "工单的流水号"),
        ("title", "标题", ticket.title, 20, "工单的标题"),
        ("state_id", "状态id", ticket.state_id, 40, "工单当前状态的id"),
        ("state.state_name", "状态名", _state_name(wf, ticket.state_id), 41, "工单当前状态的名称"),
        (
            "participant_info.participant_name",
            "当前处理人",
            current["participant_name"],
            50,
            "工单的当前处理人",
        ),
        (
            "participant_info.participant_alias",
            "当前处理人",
            current["participant_alias"],
            55,
            "工单的当前处理人(显示名)",
        ),
        (
            "workflow.workflow_name",
            "工作流名称",
            wf.name if wf is not None else "",
            60,
            "工单所属工作流的名称",
        ),
        ("creator", "创建人", ticket.creator, 80, "工单的创建人"),
        ("gmt_created", "创建时间", fmt_time(ticket.created_at), 100, "工单的创建时间"),
        ("gmt_modified", "更新时间", fmt_time(ticket.updated_at), 120, "工单的最后更新时间"),
    ]
    out = [
        _field(key, name, value, order, attribute(key), description=desc, type_id=_built_in_type(value))
        for key, name, value, order, desc in built_in
    ]
    custom: Sequence[CustomField] = wf.fields if wf is not None else ()
    for f in custom:
        out.append(
            _field(
                f.key,
                f.name,
                _json_value(ticket.fields.get(f.key)),
                f.order_id,
                attribute(f.key),
                description=f.description,
                type_id=int(f.type),
                default=_json_value(f.default),
                choice=f.choices,
                boolean_display=f.boolean_display,
                label=f.label,
                placeholder=f.placeholder,
            )
        )
    out.sort(key=lambda item: item["order_id"])  # stable: ties keep the built-in-first order
    return out


def multi_all_person(ticket: Ticket, wf: Workflow | None) -> str:
    """loonflow's JSON string of an all-must-process state: {username: {} | {transition_id,
    transition_name}}; "{}" in every other state."""
    state = wf.state(ticket.state_id) if wf is not None else None
    if ticket.is_ended or state is None or state.distribute != Distribute.ALL:
        return "{}"
    people = list(dict.fromkeys([*ticket.participants, *ticket.votes]))
    if len(people) < 2 and not ticket.votes:
        return "{}"
    out: dict[str, Json] = {}
    for name in people:
        voted = ticket.votes.get(name)
        if voted is None:
            out[name] = {}
        else:
            t = wf.transition(voted) if wf is not None else None
            out[name] = {
                "transition_id": voted,
                "transition_name": t.name if t is not None else UNKNOWN_ACTION,
            }
    return json.dumps(out, ensure_ascii=False)


def ticket_detail(ticket: Ticket, wf: Workflow | None, org: Org, viewer: str) -> Json:
    """data.value of GET /tickets/{id}."""
    state = wf.state(ticket.state_id) if wf is not None else None
    return {
        "workflow_id": ticket.workflow_id,
        "in_add_node": ticket.in_add_node,
        "gmt_created": fmt_time(ticket.created_at),
        "id": ticket.id,
        "relation": ",".join(sorted(ticket.relation)),
        "title": ticket.title,
        "sn": ticket.sn,
        "parent_ticket_id": ticket.parent_ticket_id,
        "creator": ticket.creator,
        "script_run_last_result": ticket.script_run_last_result,
        "gmt_modified": fmt_time(ticket.updated_at),
        "act_state_id": int(ticket.act_state),
        "multi_all_person": multi_all_person(ticket, wf),
        "creator_info": creator_info(ticket.creator, org),
        "participant_type_id": current_participant_type(ticket),
        "state_id": ticket.state_id,
        "is_end": ticket.act_state in ENDED,
        "is_deleted": ticket.is_deleted,
        "field_list": field_list(ticket, wf, org, viewer),
        "parent_ticket_state_id": ticket.parent_ticket_state_id,
        "add_node_man": ticket.add_node_man,
        "participant": ",".join(ticket.handlers),
        "state_info": state_info(state, ticket.state_id, wf),
    }


# --- transitions ------------------------------------------------------------------------------------


def _button(
    transition_id: int,
    name: str,
    *,
    is_accept: bool = False,
    in_add_node: bool = False,
    field_require_check: bool = False,
    alert_enable: bool = False,
    alert_text: str = "",
    attribute: int = int(Attribute.OTHER),
) -> Json:
    return {
        "transition_name": name,
        "field_require_check": field_require_check,
        "transition_id": transition_id,
        "is_accept": is_accept,
        "in_add_node": in_add_node,
        "enable_alert": alert_enable,
        "alert_enable": alert_enable,  # the name loonflow's code uses; the seed says enable_alert
        "alert_text": alert_text,
        "attribute_type_id": attribute,
    }


def transitions(actions: Iterable[Action]) -> list[Json]:
    """The seed's three forms from core.access.allowed_actions: the add-node "完成" button, the
    accept "接单" button, or the state's transitions. Other actions (deliver, comment...) are not
    transitions in loonflow and have their own routes."""
    out: list[Json] = []
    for a in actions:
        if a.kind == ActionKind.ADD_NODE_END:
            return [_button(0, "完成", in_add_node=True)]
        if a.kind == ActionKind.ACCEPT:
            return [_button(0, "接单", is_accept=True)]
        if a.kind == ActionKind.TRANSITION:
            out.append(
                _button(
                    a.transition_id,
                    a.name,
                    field_require_check=a.field_require_check,
                    alert_enable=a.alert_enable,
                    alert_text=a.alert_text,
                    attribute=a.attribute,
                )
            )
    return out


# --- flow logs --------------------------------------------------------------------------------------


def log_participant_type(log: FlowLog, org: Org) -> int:
    return int(ParticipantType.PERSON) if org.user(log.actor) is not None else int(log.actor_type)


def log_transition(log: FlowLog, wf: Workflow | None) -> Json:
    if log.transition_id:
        t = wf.transition(log.transition_id) if wf is not None else None
        name = log.transition_name or (t.name if t is not None else UNKNOWN_ACTION)
        attribute = log.attribute or (int(t.attribute) if t is not None else int(Attribute.OTHER))
    else:
        name = INTERVENE_NAMES.get(int(log.intervene_type), UNKNOWN_ACTION)
        attribute = int(Attribute.OTHER)
    return {"transition_name": name, "transition_id": log.transition_id, "attribute_type_id": attribute}


def flow_log(
    log: FlowLog, ticket: Ticket, wf: Workflow | None, org: Org, *, with_ticket_data: bool = False
) -> Json:
    """One flow-log entry, in the union of the flowlogs and flowsteps shapes.

    `ticket_data` (with_ticket_data) is the field snapshot taken with the entry plus the ticket's
    title, sn, ticket_id and gmt_created, the entry's state_id and, as gmt_modified, the entry's time."""
    ptype = log_participant_type(log, org)
    user = org.user(log.actor)
    item: Json = {
        "id": log.id,
        "ticket_id": ticket.id,
        "state": {"state_name": _state_name(wf, log.state_id), "state_id": log.state_id},
        "state_id": log.state_id,
        "transition": log_transition(log, wf),
        "participant_info": {
            "participant_email": user.email if user is not None else "",
            "participant_alias": user.alias if user is not None and user.alias else log.actor,
            "participant_phone": user.phone if user is not None else "",
            "participant": log.actor,
            "participant_type_id": ptype,
        },
        "participant": log.actor,
        "participant_type_id": ptype,
        "intervene_type_id": int(log.intervene_type),
        "suggestion": log.suggestion,
        "gmt_created": fmt_time(log.created_at),
        "gmt_modified": fmt_time(log.created_at),
    }
    if with_ticket_data:
        data: Json = {k: _json_value(v) for k, v in log.fields.items()}
        data.update(
            {
                "title": ticket.title,
                "sn": ticket.sn,
                "state_id": log.state_id,
                "ticket_id": ticket.id,
                "gmt_created": fmt_time(ticket.created_at),
                "gmt_modified": fmt_time(log.created_at),
            }
        )
        item["ticket_data"] = data
    return item


def flow_steps(ticket: Ticket, wf: Workflow | None, logs: Iterable[FlowLog], org: Org) -> Json:
    """data of GET /tickets/{id}/flowsteps: every state that is not hidden (and the current state
    even when hidden, as loonflow does), by order_id, each with its log entries, oldest first."""
    by_state: dict[int, list[FlowLog]] = {}
    for log in sorted(logs, key=lambda x: x.id):
        by_state.setdefault(log.state_id, []).append(log)
    states = wf.states if wf is not None else ()
    shown = [s for s in states if not s.is_hidden or s.id == ticket.state_id]
    shown.sort(key=lambda s: s.order_id)
    return {
        "current_state_id": ticket.state_id,
        "value": [
            {
                "state_id": s.id,
                "state_name": s.name,
                "order_id": s.order_id,
                "state_flow_log_list": [flow_log(log, ticket, wf, org) for log in by_state.get(s.id, [])],
            }
            for s in shown
        ],
    }


def ticket_participants(ticket: Ticket, org: Org) -> Json:
    """data of GET /tickets/{id}/participant_info: the people who may act now."""
    names = list(ticket.handlers)
    infos = []
    for name in names:
        user = org.user(name)
        if user is not None:
            infos.append(
                {"username": user.username, "alias": user.alias, "phone": user.phone, "email": user.email}
            )
    return {"participant_username_list": names, "participant_info_list": infos}


def ticket_state(ticket: Ticket, wf: Workflow | None) -> Json:
    """One value of GET /tickets/states."""
    return {"state_id": ticket.state_id, "state_name": _state_name(wf, ticket.state_id)}
