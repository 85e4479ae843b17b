"""POST /open-api/workorder/create: a new work order from a template.

Body (JSON)::

    {"template_id": 3,                          required: a work-order template the app may use
     "title": "...",                            optional: else the template's title template
     "relation_type": 1, "relation_id": "wm..", optional: the customer (external_userid) it is about
     "content": {"text": "...", "pic": [urls]}, the note of the creation
     "is_show": 0 | 1, "attached_json": [{"type": "image" | "video", "url": ...}],
     "component_list": [{"component_id": N, "value": "...", "values": [...]}],
     "cc_list": [staff ids],                    copied on the order (抄送)
     "msg_list": [chat record ids],             kept chat records to link to it
     "transition_id": N}                        optional: which first step (default: the first)

-> ``{"errcode": 0, "errmsg": "ok", "order_no": "1470000000000000042", "id": 42}``

Everything is checked before the order is made: the template (22302), the customer (22305: a
relation_id no customer of the directory has; relation_type 1, a customer, is the only type), the
staff ids (40003), the chat records (22304 names the unknown ids), the component values, and then
the engine (required components, types). With a customer, the template's ``customer_id`` and
``customer_name`` components are filled from it unless given (when the first step takes them).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from api.context import Caller, caller
from api.workorder import params
from api.workorder.component_input import field_values
from api.workorder.context import WorkOrderContext, workorder_context
from api.workorder.envelope import ok, raise_for
from api.workorder.errcodes import ErrCode, WorkOrderError, bad, missing
from api.workorder.staff import Staff
from api.workorder.steps import note
from api.workorder.templates import is_template
from core.commands import Create
from core.order_no import order_no
from core.workflow import FieldAccess, Workflow
from core.workorder import CUSTOMER, Customer

CREATE_KEYS = frozenset(
    {
        "template_id",
        "title",
        "relation_type",
        "relation_id",
        "content",
        "is_show",
        "attached_json",
        "component_list",
        "cc_list",
        "msg_list",
        "transition_id",
        "request_id",
    }
)
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
CUSTOMER_FIELDS = (("customer_id", "external_userid"), ("customer_name", "name"))
MAX_TITLE = 500
MAX_SMALL_ID = 2**31 - 1


def _template(wctx: WorkOrderContext, who: Caller, template_id: int) -> Workflow:
    wf = wctx.api.catalog.get(template_id)
    if wf is None or not is_template(wf):
        raise WorkOrderError(
            ErrCode.UNKNOWN_TEMPLATE, f"template_id {template_id} names no work-order template"
        )
    if not who.may_use(wf.id):
        raise WorkOrderError(ErrCode.NO_PERMISSION, f"app '{who.app.name}' may not use template {wf.id}")
    return wf


async def _customer(wctx: WorkOrderContext, data: dict[str, Any]) -> Customer | None:
    relation_type = params.integer(data, "relation_type", minimum=0, maximum=MAX_SMALL_ID)
    relation_id = params.text(data, "relation_id", limit=128).strip()
    if not relation_id:
        if relation_type:
            raise missing("relation_id")
        return None
    if relation_type not in (None, CUSTOMER):
        raise bad(f"relation_type {relation_type} is not supported; 1 (a customer) is")
    found = await wctx.customers.get(relation_id)
    if found is None:
        raise WorkOrderError(ErrCode.UNKNOWN_CUSTOMER, f"relation_id {relation_id!r} names no known customer")
    return found


def _transition(wf: Workflow, data: dict[str, Any]) -> int:
    first_steps = wf.transitions_from(wf.start_state().id)
    wanted = params.integer(data, "transition_id", minimum=1, maximum=MAX_SMALL_ID)
    if wanted is None:
        if not first_steps:
            raise WorkOrderError(ErrCode.NOT_NOW, f"template {wf.id} has no first step")
        return first_steps[0].id
    if wanted not in {t.id for t in first_steps}:
        names = ", ".join(f"{t.id} ({t.name})" for t in first_steps)
        raise bad(f"transition {wanted} does not start template {wf.id}; use one of: {names}")
    return wanted


def _with_customer(wf: Workflow, fields: dict[str, Any], customer: Customer | None) -> dict[str, Any]:
    if customer is None:
        return fields
    start = wf.start_state()
    out = dict(fields)
    for key, attribute in CUSTOMER_FIELDS:
        value = getattr(customer, attribute)
        writable = start.fields.get(key) in (FieldAccess.REQUIRED, FieldAccess.OPTIONAL)
        if value and writable and wf.field_def(key) is not None and key not in out:
            out[key] = value
    return out


async def create(request: web.Request) -> web.Response:
    who = caller(request)
    wctx = workorder_context(request)
    data = await params.body(request, CREATE_KEYS)
    template_id = params.integer(data, "template_id", required=True, minimum=1, maximum=MAX_SMALL_ID)
    if template_id is None:
        raise missing("template_id")
    wf = _template(wctx, who, template_id)
    title = params.text(data, "title", limit=MAX_TITLE)
    step = note(data)
    customer = await _customer(wctx, data)
    staff = Staff(await wctx.api.directory.org())
    cc = tuple(p for p in params.people(data, "cc_list", staff) if p != who.username)
    msg_ids = params.string_ids(data, "msg_list")
    kept = {r.id for r in await wctx.chat_records.get(msg_ids)}
    unknown = [m for m in msg_ids if m not in kept]
    if unknown:
        shown = ", ".join(repr(m[:40]) for m in unknown[:10])
        raise WorkOrderError(ErrCode.UNKNOWN_MESSAGE, f"msg_list: no kept chat record {shown}")
    transition_id = _transition(wf, data)
    fields = _with_customer(wf, field_values(wf, data.get("component_list"), staff), customer)
    extra = {**step.extra, "cc": list(cc)} if cc else step.extra
    key = _request_key(who.app.name, who.username, data)
    relation = (CUSTOMER, customer.external_userid) if customer is not None else None
    cmd = Create(
        who.username,
        wf.id,
        transition_id,
        fields,
        title,
        step.text,
        cc=cc,
        extra=extra,
        request_key=key,
        relation=relation,
    )
    done = raise_for(await wctx.api.service.create(cmd, sn_prefix=who.app.sn_prefix))
    ticket_id = done.ticket.id
    now = wctx.api.clock.now()
    if customer is not None:  # kept with a new order; a retried request's order is checked (or completed)
        stored = await wctx.work_orders.relate(ticket_id, CUSTOMER, customer.external_userid, now)
        if stored.relation_id != customer.external_userid:
            raise WorkOrderError(
                ErrCode.NOT_NOW,
                f"request_id was used for work order {order_no(ticket_id)} of another customer",
            )
    if msg_ids:
        await wctx.chat_records.link(ticket_id, msg_ids, who.username, now)
    return ok(order_no=order_no(ticket_id), id=ticket_id)


def _request_key(app: str, username: str, data: dict[str, Any]) -> str:
    """`request_id` (optional, 8 to 64 of A-Z a-z 0-9 _ -) makes the create idempotent: sent again
    by the same app and user, it answers the order the first one made and creates nothing more."""
    raw = data.get("request_id")
    if raw is None:
        return ""
    if not isinstance(raw, str) or not REQUEST_ID.fullmatch(raw):
        raise bad("'request_id' must be 8 to 64 characters of A-Z a-z 0-9 _ -")
    return f"openapi:{app}:{username}:{raw}"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/workorder/create", create)
