"""What the sidebar shows a staff member about the customer whose chat is open (the read side):
the customer (from the customer table), their work orders the staff member may see, the latest
1:1 messages between the two (from the chat archive) with the orders each is linked to, and the
work-order templates' form choices. Plain JSON-able data; platform-neutral."""

from __future__ import annotations

import re
from typing import Any

from bot.sidebar.ports import Sidebar
from core.access import can_view
from core.order_no import order_no
from core.org import Org, User
from core.ticket import Ticket
from core.workflow import Workflow
from core.workorder import CUSTOMER, ChatRecord
from core.workorder_templates import is_work_order, work_order_templates

EXTERNAL_USERID = re.compile(r"[A-Za-z0-9_-]{1,128}\Z", re.ASCII)
MAX_ORDERS = 20
MAX_MESSAGES = 50
CUSTOMER_FIELDS = ("customer_name", "customer_id")
FORM_FIELDS = ("category", "priority", "description")


def valid_external_userid(value: object) -> str | None:
    return value if isinstance(value, str) and EXTERNAL_USERID.match(value) else None


async def serves(sb: Sidebar, staff: User, external_userid: str, org: Org) -> bool:
    """May `staff` work on this customer in the sidebar? A follow user of theirs (WeCom: a staff
    member who has them as a contact), or a super admin. The page's JS-SDK context only says which
    chat is open in the staff member's client; the browser can send any id, so it is checked here."""
    if org.is_super_admin(staff.username):
        return True
    customer = await sb.customers.get(external_userid)
    if customer is None or not staff.wecom_userid:
        return False
    return any(str(f.get("userid", "")) == staff.wecom_userid for f in customer.follow_users)


NOT_SERVED = "你不是这位客户的跟进人（企业微信客户联系），不能在侧边栏查看或处理他的工单"


def workflow_of(sb: Sidebar, ticket: Ticket) -> Workflow | None:
    return sb.catalog.get(ticket.workflow_id, ticket.workflow_version) or sb.catalog.get(ticket.workflow_id)


async def visible_order(
    sb: Sidebar, ticket_id: int, org: Org, username: str
) -> tuple[Ticket, Workflow] | None:
    """The work order `ticket_id` if it exists and `username` (active) may see it."""
    ticket = await sb.queries.get_ticket(ticket_id)
    if ticket is None or ticket.is_deleted:
        return None
    wf = workflow_of(sb, ticket)
    if (
        wf is None
        or not is_work_order(wf)
        or not org.active(username)
        or not can_view(ticket, wf, org, username)
    ):
        return None
    return ticket, wf


def between(record: ChatRecord, staff_userid: str, external_userid: str) -> bool:
    """A 1:1 message between the staff member and the customer, either way."""
    if record.room_id or not staff_userid:
        return False
    return (record.from_id == staff_userid and external_userid in record.to_ids) or (
        record.from_id == external_userid and staff_userid in record.to_ids
    )


def _text(record: ChatRecord) -> str:
    text = record.content.get("text")
    if isinstance(text, str):
        return text
    return f"[{record.msg_type}]"


def _choices(wf: Workflow, key: str) -> list[dict[str, str]]:
    fdef = wf.field_def(key)
    return [{"value": v, "label": label} for v, label in fdef.choices.items()] if fdef else []


def templates(sb: Sidebar) -> list[dict[str, Any]]:
    out = []
    for wf in work_order_templates(sb.catalog.all()):
        priority = wf.field_def("priority")
        out.append(
            {
                "id": wf.id,
                "name": wf.name,
                "categories": _choices(wf, "category"),
                "priorities": _choices(wf, "priority"),
                "default_priority": str(priority.default) if priority and priority.default else "",
            }
        )
    return out


def _order_row(ticket: Ticket, wf: Workflow, linked: int) -> dict[str, Any]:
    state = wf.state(ticket.state_id)
    return {
        "order_no": order_no(ticket.id),
        "ticket_id": ticket.id,
        "sn": ticket.sn,
        "title": ticket.title,
        "state": state.name if state is not None else str(ticket.state_id),
        "ended": ticket.is_ended,
        "created_at": ticket.created_at.isoformat(),
        "linked": linked,
    }


async def load(sb: Sidebar, staff: User, external_userid: str, org: Org) -> dict[str, Any]:
    """The sidebar's data for `staff` looking at the customer `external_userid`."""
    customer = await sb.customers.get(external_userid)
    orders: list[dict[str, Any]] = []
    linked_to: dict[str, list[str]] = {}
    for ticket_id in (await sb.work_orders.tickets_of(CUSTOMER, external_userid))[:MAX_ORDERS]:
        found = await visible_order(sb, ticket_id, org, staff.username)
        if found is None:
            continue
        ticket, wf = found
        msg_ids = await sb.records.linked(ticket.id)
        for msg_id in msg_ids:
            linked_to.setdefault(msg_id, []).append(order_no(ticket.id))
        orders.append(_order_row(ticket, wf, len(msg_ids)))
    records = (
        await sb.records.between(staff.wecom_userid, external_userid, limit=MAX_MESSAGES)
        if staff.wecom_userid
        else []
    )
    messages = [
        {
            "id": r.id,
            "direction": "out" if r.from_id == staff.wecom_userid else "in",
            "text": _text(r),
            "msg_type": r.msg_type,
            "sent_at": r.sent_at.isoformat(),
            "linked": linked_to.get(r.id, []),
        }
        for r in reversed(records)  # oldest first, as a chat reads
    ]
    return {
        "staff": {"username": staff.username, "name": staff.alias or staff.username},
        "customer": {
            "external_userid": external_userid,
            "known": customer is not None,
            "name": customer.name if customer else "",
            "corp_name": customer.corp_name if customer else "",
            "avatar": customer.avatar if customer else "",
            "deleted": customer.deleted if customer else False,
        },
        "orders": orders,
        "messages": messages,
        "templates": templates(sb),
    }
