"""What every write on an order shares: the note of the step it records (``content``,
``attached_json``, ``is_show`` -> FlowLog.extra) and running the engine command as the caller,
re-checking inside the command's transaction that the caller may still see the order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from api.context import Caller
from api.workorder import params
from api.workorder.context import workorder_context
from api.workorder.envelope import raise_for
from api.workorder.errcodes import REASON_CODES, ErrCode, WorkOrderError
from api.workorder.orders import Order, still_seen
from core.commands import Command
from core.order_no import order_no
from core.refusals import not_handler
from core.service import Done
from core.workflow import ParticipantType


@dataclass(frozen=True, slots=True)
class StepNote:
    """A request's note for its step: ``content`` {text, pic}, ``attached_json``, ``is_show``."""

    text: str
    extra: dict[str, Any]


def note(data: dict[str, Any], *, required: bool = False) -> StepNote:
    text, pic = params.content(data, required=required)
    extra: dict[str, Any] = {"pic": pic, "attached": params.attached(data), "is_show": params.is_show(data)}
    return StepNote(text, extra)


async def run(request: web.Request, who: Caller, order: Order, cmd: Command) -> Done:
    ctx = workorder_context(request).api
    return raise_for(await ctx.service.execute(order.ticket.id, cmd, guard=still_seen(who)))


def number(order: Order) -> str:
    return order_no(order.ticket.id)


def not_a_handler(order: Order, viewer: str) -> WorkOrderError:
    """Why `viewer` may not act on the open order now, as the engine words it."""
    ticket = order.ticket
    state = order.wf.state(ticket.state_id)
    if ticket.participant_type == ParticipantType.HOOK:
        return WorkOrderError(ErrCode.NOT_NOW, f"work order {number(order)} waits for an automated step")
    if state is None:
        return WorkOrderError(ErrCode.NOT_NOW, f"work order {number(order)} is in an unknown step")
    refused = not_handler(ticket, state, viewer)
    return WorkOrderError(REASON_CODES.get(refused.reason, ErrCode.NO_PERMISSION), refused.message)


def ended(order: Order, what: str) -> WorkOrderError:
    return WorkOrderError(ErrCode.NOT_NOW, f"work order {number(order)} has ended; {what}")
