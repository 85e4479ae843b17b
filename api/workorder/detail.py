"""Pure serializers: an order -> the ``work_order`` object of the detail (every key of the
vendor's example, same types) and a row of the list (17 fields). The routes load the ticket, its
workflow, the org, the flow log (oldest first), the relation, the customer and the linked chat
records, and pass them in; `now` is the API clock's.

Keys beyond the obvious (see api.workorder.facts, flows, components, codes, templates):
``id`` the ticket id; ``order_no`` core.order_no; ``corp_id`` this deployment's numeric corp id as a
string (api.workorder.context.corp_number); ``deleted`` 0 (deleted orders are not served);
``cc_list`` staff ids copied on the order; ``msg_list`` the linked chat-record ids (strings), in the
order linked; ``relation_type`` 1 and ``relation_id`` the customer's external_userid with its
name, avatar and corp name ("" when unknown), or 0 and "" without a relation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from api.workorder import facts
from api.workorder.buttons import button_operate
from api.workorder.codes import order_status
from api.workorder.components import record_list
from api.workorder.flows import processing_flows
from api.workorder.staff import Staff
from api.workorder.templates import step_of
from api.workorder.times import epoch, seconds_between
from core.order_no import order_no
from core.ticket import FlowLog, InterveneType, Ticket
from core.workflow import Workflow
from core.workorder import CUSTOMER, Customer, Relation


def _people(prefix: str, staff: Staff, usernames: Sequence[str]) -> dict[str, str]:
    return {
        f"{prefix}_avatar": staff.avatar_of(usernames[0]) if usernames else "",
        f"{prefix}_id": ",".join(staff.ids_of(usernames)),
        f"{prefix}_name": ",".join(staff.name_of(u) for u in usernames),
    }


def _relation(relation: Relation | None, customer: Customer | None) -> dict[str, Any]:
    known = customer if relation is not None and relation.relation_type == CUSTOMER else None
    return {
        "relation_avatar": known.avatar if known is not None else "",
        "relation_corp_name": known.corp_name if known is not None else "",
        "relation_id": relation.relation_id if relation is not None else "",
        "relation_name": known.name if known is not None else "",
        "relation_type": relation.relation_type if relation is not None else 0,
    }


def total_time(ticket: Ticket, now: datetime) -> int:
    return seconds_between(ticket.created_at, facts.ended_at(ticket) or now)


def work_order(
    ticket: Ticket,
    wf: Workflow,
    staff: Staff,
    viewer: str,
    logs: Sequence[FlowLog],
    *,
    relation: Relation | None,
    customer: Customer | None,
    msg_list: Sequence[str],
    corp_id: int,
    now: datetime,
) -> dict[str, Any]:
    step, stage_name = step_of(ticket, wf)
    last = facts.last_handler(logs)
    return {
        "button_operate": button_operate(ticket, wf, staff.org, viewer),
        "cc_list": staff.ids_of(sorted(ticket.cc)),
        "content": facts.content(logs),
        "corp_id": str(corp_id),
        "created_at": epoch(ticket.created_at),
        **_people("creator", staff, [ticket.creator]),
        "deleted": 0,
        "deliver": facts.ever(logs, InterveneType.DELIVER),
        "flow_handler": facts.in_flow(ticket, viewer),
        **_people("handler", staff, list(ticket.handlers)),
        "id": ticket.id,
        **_people("last_handler", staff, [last] if last else []),
        "msg_list": [str(m) for m in msg_list],
        "order_no": order_no(ticket.id),
        "processing_flows": processing_flows(ticket, wf, logs, staff, customer.name if customer else ""),
        **_relation(relation, customer),
        "reopen": facts.ever(logs, InterveneType.REOPEN),
        "stage_name": stage_name,
        "status": int(order_status(ticket, wf)),
        "template_id": wf.id,
        "template_step": step,
        "template_title": wf.name,
        "title": ticket.title,
        "total_time": total_time(ticket, now),
        "updated_at": epoch(ticket.updated_at),
        "work_order_component_record_list": record_list(ticket, wf, logs, staff, corp_id),
    }


def list_row(
    ticket: Ticket,
    wf: Workflow,
    staff: Staff,
    viewer: str,
    logs: Sequence[FlowLog],
    *,
    relation: Relation | None,
    now: datetime,
) -> dict[str, Any]:
    """One row of GET /open-api/workorder/list."""
    step, _ = step_of(ticket, wf)
    return {
        "id": ticket.id,
        "order_no": order_no(ticket.id),
        "template_id": wf.id,
        "template_title": wf.name,
        "flow_handler": facts.in_flow(ticket, viewer),
        "template_step": step,
        "title": ticket.title,
        "relation_type": relation.relation_type if relation is not None else 0,
        "relation_id": relation.relation_id if relation is not None else "",
        "status": int(order_status(ticket, wf)),
        "handler_id": ",".join(staff.ids_of(ticket.handlers)),
        "last_handler_id": staff.id_of(last) if (last := facts.last_handler(logs)) else "",
        "creator_id": staff.id_of(ticket.creator),
        "created_at": epoch(ticket.created_at),
        "updated_at": epoch(ticket.updated_at),
        "total_time": total_time(ticket, now),
        "content": facts.content(logs),
    }
