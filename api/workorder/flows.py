"""``processing_flows``: the order's steps newest first, each with the 21 keys of the vendor's
example (api.workorder.codes has the ``type`` table). While the order is open a synthetic type-2
entry ("待处理", id 0) on top names who has to act now, as in the example.

Per entry: ``creator_*`` and ``handler_*`` are the person who took the step (the order's creator
and its current handler(s) in the synthetic entry), ``to_*`` the person it was handed to (a switch
to a handler; the current handler in the synthetic entry; "" otherwise), ``to_type`` 0 (a staff
member); ``content`` the step's note ``{"text", "pic"}`` (``pic`` null without pictures; a
creation without a note reads "员工X已为客户Y创建了工单"); ``cc_list`` the staff ids copied with the
step (null when none); ``attached_json`` [{type, url}]; ``is_show`` 1 if the customer may see it
(the synthetic entry: 1); ``point`` the rating of an evaluation (else 0); ``reply_time`` 0 and
``del_reply_status`` false (replies are never withdrawn).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from api.workorder.codes import FLOW_NAMES, FLOW_TYPES, FlowType, OrderStatus, order_status
from api.workorder.notes import note_of
from api.workorder.staff import Staff
from api.workorder.times import epoch
from core.ticket import FlowLog, Ticket
from core.workflow import Workflow

NAME_SEPARATOR = "、"


def _person(prefix: str, staff: Staff, usernames: Sequence[str]) -> dict[str, str]:
    people = [u for u in usernames if u]
    return {
        f"{prefix}_avatar": staff.avatar_of(people[0]) if people else "",
        f"{prefix}_id": ",".join(staff.ids_of(people)),
        f"{prefix}_name": ",".join(staff.name_of(u) for u in people),
    }


def _entry(
    flow_id: int,
    kind: FlowType,
    created_at: datetime | None,
    staff: Staff,
    *,
    creator: Sequence[str],
    handler: Sequence[str],
    to: Sequence[str],
    text: str,
    pic: list[str] | None,
    cc: list[str] | None = None,
    attached: list[dict[str, str]] | None = None,
    is_show: int = 1,
    point: int = 0,
) -> dict[str, Any]:
    return {
        "attached_json": attached or [],
        "cc_list": staff.ids_of(cc) if cc else None,
        "content": {"pic": pic or None, "text": text},
        "created_at": epoch(created_at),
        **_person("creator", staff, creator),
        "del_reply_status": False,
        **_person("handler", staff, handler),
        "id": flow_id,
        "is_show": is_show,
        "point": point,
        "reply_time": 0,
        **_person("to", staff, to),
        "to_type": 0,
        "type": int(kind),
        "type_name": FLOW_NAMES[kind],
    }


def _created_text(log: FlowLog, staff: Staff, customer_name: str) -> str:
    if log.suggestion:
        return log.suggestion
    who = staff.name_of(log.actor)
    return f"员工{who}已为客户{customer_name}创建了工单" if customer_name else f"员工{who}创建了工单"


def _flow(log: FlowLog, first: bool, staff: Staff, customer_name: str) -> dict[str, Any]:
    note = note_of(log)
    kind = FlowType.CREATE if first else FLOW_TYPES.get(log.intervene_type, FlowType.SWITCH)
    return _entry(
        log.id,
        kind,
        log.created_at,
        staff,
        creator=[log.actor],
        handler=[log.actor],
        to=[note.to] if note.to else [],
        text=_created_text(log, staff, customer_name) if first else note.text,
        pic=note.pic,
        cc=note.cc,
        attached=note.attached,
        is_show=note.is_show,
        point=note.point,
    )


def _pending(ticket: Ticket, wf: Workflow, staff: Staff) -> dict[str, Any] | None:
    status = order_status(ticket, wf)
    if ticket.is_ended:
        return None
    handlers = list(ticket.handlers)
    if status == OrderStatus.AUTOMATED or not handlers:
        text = "待系统自动处理"
    else:
        text = f"待员工 {NAME_SEPARATOR.join(staff.name_of(u) for u in handlers)} 处理"
    return _entry(
        0,
        FlowType.PENDING,
        ticket.state_entered_at or ticket.updated_at,
        staff,
        creator=[ticket.creator],
        handler=handlers,
        to=handlers,
        text=text,
        pic=None,
    )


def processing_flows(
    ticket: Ticket, wf: Workflow, logs: Sequence[FlowLog], staff: Staff, customer_name: str = ""
) -> list[dict[str, Any]]:
    """The flows of the order, newest first; `logs` oldest first."""
    flows = [_flow(log, index == 0, staff, customer_name) for index, log in enumerate(logs)]
    flows.reverse()
    pending = _pending(ticket, wf, staff)
    return [pending, *flows] if pending is not None else flows
