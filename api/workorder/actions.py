"""The open API's writes on an existing order (POST, JSON body; the acting user is the signed
``username`` header). Each is checked before the engine runs, in this order: the body (JSON, an
object, only the endpoint's keys), the parameters (41001 missing, 40003 malformed, unknown staff
ids refused), the order (22301 unless the caller may see it), whether the caller may do it now —
the same rule as the detail's ``button_operate`` (48002 not theirs to do, 22303 not in the order's
current state) — and then the engine decides, its refusals coming back with its own sentence. A
refused request changes nothing. Every answer names the order: ``{"errcode": 0, "errmsg": "ok",
"order_no": "..."}``.

    POST /open-api/workorder/switch    流转: {order_no, transition_id | handler_id, content, cc_list,
                                       is_show, attached_json, component_list}  (button deliver)
    POST /open-api/workorder/accept    接单 in an accept-first step: {order_no}
    POST /open-api/workorder/reply     回复: {order_no, content (text required), is_show, attached_json}
    POST /open-api/workorder/close     关闭: {order_no, content, cc_list, is_show, attached_json}
    POST /open-api/workorder/reopen    重新打开: {order_no, content, cc_list, is_show, attached_json}
    POST /open-api/workorder/evaluate  评价: {order_no, point (1-5), content}
    POST /open-api/workorder/cc        抄送: {order_no, cc_list (required), content}

A switch takes ``transition_id`` (one of the transitions open to the caller now) with the
component values that step asks for, or ``handler_id`` (a staff id) to hand the order to that
person (转交; an admin or intervener of the template may force it). ``cc_list`` people are copied
with the step in the same change (core.copies); one already copied is left as is.
"""

from __future__ import annotations

from aiohttp import web

from api.context import Caller, caller
from api.workorder import params
from api.workorder.component_input import field_values
from api.workorder.envelope import ok
from api.workorder.errcodes import ErrCode, WorkOrderError, bad, missing
from api.workorder.orders import Order, visible_order
from api.workorder.staff import Staff
from api.workorder.steps import ended, not_a_handler, note, number, run
from core.access import ActionKind, allowed_actions, can_evaluate, can_handle, can_reopen
from core.commands import Accept, AddCc, Close, Comment, Deliver, Evaluate, Handle, Reopen
from core.copies import can_copy

NOTE_KEYS = frozenset({"order_no", "content", "is_show", "attached_json"})
SWITCH_KEYS = NOTE_KEYS | {"transition_id", "handler_id", "cc_list", "component_list"}
CLOSE_KEYS = NOTE_KEYS | {"cc_list"}
EVALUATE_KEYS = frozenset({"order_no", "point", "content"})
CC_KEYS = frozenset({"order_no", "cc_list", "content"})
MAX_SMALL_ID = 2**31 - 1


def _kinds(order: Order, who: Caller) -> set[ActionKind]:
    return {a.kind for a in allowed_actions(order.ticket, order.wf, order.org, who.username)}


async def _begin(request: web.Request, keys: frozenset[str]) -> tuple[Caller, dict[str, object], Order]:
    who = caller(request)
    data = await params.body(request, keys)
    order = await visible_order(request, who, data.get("order_no"))
    return who, data, order


async def switch(request: web.Request) -> web.Response:
    who = caller(request)
    data = await params.body(request, SWITCH_KEYS)
    transition_id = params.integer(data, "transition_id", minimum=1, maximum=MAX_SMALL_ID)
    order = await visible_order(request, who, data.get("order_no"))
    staff = Staff(order.org)
    target = params.person(data, "handler_id", staff)
    if (transition_id is None) == (target is None):
        raise WorkOrderError(
            ErrCode.MISSING_PARAM if transition_id is None else ErrCode.BAD_PARAM,
            "give either 'transition_id' (take a step) or 'handler_id' (hand the order to someone)",
        )
    step = note(data)
    cc = params.people(data, "cc_list", staff)
    if order.ticket.is_ended:
        raise ended(order, "reopen it first")
    actions = allowed_actions(order.ticket, order.wf, order.org, who.username)
    if transition_id is not None:
        open_steps = {a.transition_id: a.name for a in actions if a.kind == ActionKind.TRANSITION}
        if not open_steps:
            raise not_a_handler(order, who.username)
        if transition_id not in open_steps:
            names = ", ".join(f"{i} ({n})" for i, n in open_steps.items())
            raise bad(f"transition {transition_id} is not open now; open: {names}")
        fields = field_values(order.wf, data.get("component_list"), staff)
        cmd: Handle | Deliver = Handle(
            who.username,
            transition_id,
            fields,
            step.text,
            expected_state_id=order.ticket.state_id,
            extra=step.extra,
            cc=cc,
        )
    elif target is not None:
        if data.get("component_list") is not None:
            raise bad("'component_list' goes with 'transition_id', not with 'handler_id'")
        if not any(a.kind == ActionKind.DELIVER for a in actions):
            raise not_a_handler(order, who.username)
        state = order.wf.state(order.ticket.state_id)
        forced = state is None or not can_handle(order.ticket, state, who.username)
        cmd = Deliver(who.username, target, step.text, forced, extra={**step.extra, "to": target}, cc=cc)
    await run(request, who, order, cmd)
    return ok(order_no=number(order))


async def accept(request: web.Request) -> web.Response:
    who, _, order = await _begin(request, frozenset({"order_no"}))
    if order.ticket.is_ended:
        raise ended(order, "there is nothing to accept")
    if ActionKind.ACCEPT not in _kinds(order, who):
        if who.username in order.ticket.handlers:
            raise WorkOrderError(ErrCode.NOT_NOW, f"work order {number(order)} needs no accept now")
        raise not_a_handler(order, who.username)
    await run(request, who, order, Accept(who.username, expected_state_id=order.ticket.state_id))
    return ok(order_no=number(order))


async def reply(request: web.Request) -> web.Response:
    who, data, order = await _begin(request, NOTE_KEYS)
    step = note(data, required=True)
    if ActionKind.COMMENT not in _kinds(order, who):
        raise WorkOrderError(ErrCode.NO_PERMISSION, f"you may not reply to work order {number(order)}")
    await run(request, who, order, Comment(who.username, step.text, step.extra))
    return ok(order_no=number(order))


async def close(request: web.Request) -> web.Response:
    who, data, order = await _begin(request, CLOSE_KEYS)
    step = note(data)
    cc = params.people(data, "cc_list", Staff(order.org))
    if order.ticket.is_ended:
        raise ended(order, "it is closed or finished already")
    if ActionKind.CLOSE not in _kinds(order, who):
        raise WorkOrderError(
            ErrCode.NO_PERMISSION,
            f"only an admin or intervener of '{order.wf.name}', or the creator while the order is at its "
            "first step, "
            f"can close work order {number(order)}",
        )
    await run(request, who, order, Close(who.username, step.text, step.extra, cc=cc))
    return ok(order_no=number(order))


async def reopen(request: web.Request) -> web.Response:
    who, data, order = await _begin(request, CLOSE_KEYS)
    step = note(data)
    cc = params.people(data, "cc_list", Staff(order.org))
    if not order.ticket.is_ended:
        raise WorkOrderError(ErrCode.NOT_NOW, f"work order {number(order)} is still open")
    if not can_reopen(order.ticket, order.wf, order.org, who.username):
        raise WorkOrderError(
            ErrCode.NO_PERMISSION,
            f"only the creator of work order {number(order)} or an admin of '{order.wf.name}' can reopen it",
        )
    await run(request, who, order, Reopen(who.username, step.text, step.extra, cc=cc))
    return ok(order_no=number(order))


async def evaluate(request: web.Request) -> web.Response:
    who, data, order = await _begin(request, EVALUATE_KEYS)
    point = params.required_integer(data, "point", minimum=1, maximum=5)
    text, pic = params.content(data)
    if not order.ticket.is_ended:
        raise WorkOrderError(
            ErrCode.NOT_NOW, f"work order {number(order)} is still open; rate it once it has ended"
        )
    if not can_evaluate(order.ticket, who.username):
        raise WorkOrderError(
            ErrCode.NO_PERMISSION, f"only the creator of work order {number(order)} can rate it"
        )
    await run(request, who, order, Evaluate(who.username, point, text, {"pic": pic}))
    return ok(order_no=number(order))


async def copy(request: web.Request) -> web.Response:
    who, data, order = await _begin(request, CC_KEYS)
    people = params.people(data, "cc_list", Staff(order.org))
    if not people:
        raise missing("cc_list")
    text, pic = params.content(data)
    if not can_copy(order.ticket, order.wf, order.org, who.username):
        raise WorkOrderError(
            ErrCode.NO_PERMISSION,
            f"only the creator of work order {number(order)}, someone it involves or an admin can copy people on it",
        )
    await run(request, who, order, AddCc(who.username, people, text, {"pic": pic}))
    return ok(order_no=number(order))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/workorder/switch", switch)
    router.add_post("/workorder/accept", accept)
    router.add_post("/workorder/reply", reply)
    router.add_post("/workorder/close", close)
    router.add_post("/workorder/reopen", reopen)
    router.add_post("/workorder/evaluate", evaluate)
    router.add_post("/workorder/cc", copy)
