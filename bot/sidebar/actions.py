"""What the sidebar's buttons do, as the signed-in staff member (platform-neutral):

- create: a work order of a work-order template (default: the first, e.g. 客服工单) for the customer
  (customer_name / customer_id filled; category / priority / description from the form) through
  the engine with a request key (a form posted twice makes one order), related to the customer
  (WorkOrders.relate, CUSTOMER) and with the chosen messages linked (ChatRecords.link);
- link: chosen messages to an existing work order of this customer (or one without a customer).

Every input is checked before anything is written, so a refusal changes nothing: a chosen
message must be a kept 1:1 message between this staff member and this customer; the order must be
a work order the staff member may see and not another customer's. Refusals are (status, message):
400 bad input, 403 not allowed, 404 unknown, 409 a conflict with what is stored.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.sidebar.context import NOT_SERVED, between, serves, valid_external_userid, visible_order
from bot.sidebar.ports import Sidebar
from core import commands as core
from core.errors import Reason, Rejected
from core.order_no import order_no, ticket_id_of
from core.org import Org, User
from core.service import Done
from core.workflow import Transition, Workflow
from core.workorder import CUSTOMER
from core.workorder_templates import work_order_templates

log = logging.getLogger("ticketbot.sidebar")

MAX_MESSAGES = 100
MAX_TEXT = 2000
MAX_NAME = 200
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{8,64}\Z", re.ASCII)
REJECTED_STATUS = {
    Reason.NOT_FOUND: 404,
    Reason.NO_PERMISSION: 403,
    Reason.NOT_PARTICIPANT: 403,
    Reason.UNKNOWN_USER: 403,
}


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    message: str


@dataclass(frozen=True, slots=True)
class Outcome:
    order_no: str
    ticket_id: int
    title: str
    linked: int  # messages newly linked
    total: int  # messages linked to the order now


def _text(data: Mapping[str, Any], key: str, limit: int, *, required: bool = True) -> str | Refusal:
    value = data.get(key, "")
    if not isinstance(value, str):
        return Refusal(400, f"{key} 应为文本")
    value = value.strip()
    if required and not value:
        return Refusal(400, f"请填写 {key}")
    if len(value) > limit:
        return Refusal(400, f"{key} 太长了（最多 {limit} 字）")
    return value


def _msg_ids(data: Mapping[str, Any], *, required: bool) -> list[str] | Refusal:
    raw = data.get("msg_ids", [])
    if not isinstance(raw, list) or not all(isinstance(m, str) and 0 < len(m) <= 128 for m in raw):
        return Refusal(400, "msg_ids 应为聊天记录 id 的列表")
    ids = list(dict.fromkeys(raw))
    if len(ids) > MAX_MESSAGES:
        return Refusal(400, f"一次最多关联 {MAX_MESSAGES} 条聊天记录")
    if required and not ids:
        return Refusal(400, "请先勾选要关联的聊天记录")
    return ids


async def _own_messages(sb: Sidebar, staff: User, external_userid: str, ids: Sequence[str]) -> Refusal | None:
    """None when every id is a kept 1:1 message between the staff member and the customer."""
    if not ids:
        return None
    found = {r.id: r for r in await sb.records.get(ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        return Refusal(404, f"找不到聊天记录 {missing[0][:64]}")
    foreign = [i for i in ids if not between(found[i], staff.wecom_userid, external_userid)]
    if foreign:
        return Refusal(403, f"聊天记录 {foreign[0][:64]} 不是你和这位客户的单聊消息")
    return None


def _start(wf: Workflow) -> Transition | None:
    start = wf.start_state()
    return next((t for t in wf.transitions_from(start.id) if t.destination_state_id != start.id), None)


def _template(sb: Sidebar, data: Mapping[str, Any]) -> Workflow | Refusal:
    found = work_order_templates(sb.catalog.all())
    raw = data.get("template_id")
    if raw is None:
        if not found:
            return Refusal(409, "没有可用的工单模板")
        return found[0]
    wf = next((w for w in found if not isinstance(raw, bool) and w.id == raw), None)
    return wf if wf is not None else Refusal(400, "template_id 不是工单模板")


async def create(sb: Sidebar, staff: User, org: Org, data: Mapping[str, Any]) -> Outcome | Refusal:
    external_userid = valid_external_userid(data.get("external_userid"))
    if external_userid is None:
        return Refusal(400, "external_userid 无效")
    if not await serves(sb, staff, external_userid, org):
        return Refusal(403, NOT_SERVED)
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
        return Refusal(400, "request_id 无效（8 到 64 个字母、数字、_ 或 -）")
    wf = _template(sb, data)
    if isinstance(wf, Refusal):
        return wf
    transition = _start(wf)
    if transition is None:
        return Refusal(409, f"工单模板“{wf.name}”无法发起")
    fields: dict[str, Any] = {}
    for key, limit in (("customer_name", MAX_NAME), ("category", MAX_NAME), ("priority", MAX_NAME)):
        value = _text(data, key, limit, required=False)
        if isinstance(value, Refusal):
            return value
        if value and wf.field_def(key) is not None:
            fields[key] = value
    description = _text(data, "description", MAX_TEXT, required=False)
    if isinstance(description, Refusal):
        return description
    if description and wf.field_def("description") is not None:
        fields["description"] = description
    if wf.field_def("customer_id") is not None:
        fields["customer_id"] = external_userid
    ids = _msg_ids(data, required=False)
    if isinstance(ids, Refusal):
        return ids
    refused = await _own_messages(sb, staff, external_userid, ids)
    if refused is not None:
        return refused
    request_key = f"sidebar:{staff.username}:{request_id}"
    earlier = await sb.queries.ticket_for_request(request_key)
    if earlier is not None:  # the same form posted again: the same order, for the same customer only
        relation = (await sb.work_orders.relations([earlier.id])).get(earlier.id)
        if relation is not None and (relation.relation_type, relation.relation_id) != (
            CUSTOMER,
            external_userid,
        ):
            return Refusal(409, "这个请求已经为另一位客户创建过工单")
    result = await sb.service.create(
        core.Create(
            actor=staff.username,
            workflow_id=wf.id,
            transition_id=transition.id,
            fields=fields,
            request_key=request_key,
            relation=(CUSTOMER, external_userid),
        )
    )
    if isinstance(result, Rejected):
        return Refusal(REJECTED_STATUS.get(result.reason, 400), result.message)
    if not isinstance(result, Done):  # pragma: no cover - a create is never "already handled"
        return Refusal(409, result.message)
    ticket = result.ticket
    now = sb.clock.now()
    stored = await sb.work_orders.relate(ticket.id, CUSTOMER, external_userid, now)  # checks a repeat
    if (stored.relation_type, stored.relation_id) != (CUSTOMER, external_userid):  # a raced reuse
        return Refusal(409, "这个请求已经为另一位客户创建过工单")
    newly = await sb.records.link(ticket.id, ids, staff.username, now) if ids else []
    total = len(await sb.records.linked(ticket.id))
    log.info(
        "work order created from the sidebar",
        extra={"ticket_id": ticket.id, "username": staff.username, "linked": len(newly)},
    )
    return Outcome(order_no(ticket.id), ticket.id, ticket.title, len(newly), total)


async def link(sb: Sidebar, staff: User, org: Org, data: Mapping[str, Any]) -> Outcome | Refusal:
    external_userid = valid_external_userid(data.get("external_userid"))
    if external_userid is None:
        return Refusal(400, "external_userid 无效")
    if not await serves(sb, staff, external_userid, org):
        return Refusal(403, NOT_SERVED)
    raw_no = data.get("order_no")
    ticket_id = ticket_id_of(raw_no) if isinstance(raw_no, str) else None
    if ticket_id is None:
        return Refusal(400, "工单号格式不对")
    ids = _msg_ids(data, required=True)
    if isinstance(ids, Refusal):
        return ids
    found = await visible_order(sb, ticket_id, org, staff.username)
    if found is None:
        return Refusal(404, f"找不到工单 {order_no(ticket_id)}，或你无权查看")
    ticket, _ = found
    relation = (await sb.work_orders.relations([ticket.id])).get(ticket.id)
    if relation is not None and (relation.relation_type, relation.relation_id) != (CUSTOMER, external_userid):
        return Refusal(409, f"工单 {order_no(ticket.id)} 属于另一位客户")
    refused = await _own_messages(sb, staff, external_userid, ids)
    if refused is not None:
        return refused
    now = sb.clock.now()
    newly = await sb.records.link(ticket.id, ids, staff.username, now)
    total = len(await sb.records.linked(ticket.id))
    log.info(
        "chat records linked from the sidebar",
        extra={"ticket_id": ticket.id, "username": staff.username, "linked": len(newly)},
    )
    return Outcome(order_no(ticket.id), ticket.id, ticket.title, len(newly), total)
