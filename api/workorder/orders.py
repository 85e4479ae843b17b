"""Finding the work order a request names: its ``order_no`` (core.order_no: 1470000000000000000 +
the ticket id, as a string of digits), refused with 22301 unless it names a ticket that exists, is
not deleted, is a work order (its workflow is a template the calling app may use) and that the
acting user may see. Every one of those refusals reads the same, so a stranger learns nothing
about which orders exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from api.context import ApiContext, Caller
from api.workorder.context import workorder_context
from api.workorder.errcodes import WorkOrderError, unknown_order
from api.workorder.templates import is_template
from core.access import can_view
from core.errors import Reason, Rejected
from core.order_no import order_no, ticket_id_of
from core.org import Org
from core.service import Guard
from core.ticket import Ticket
from core.workflow import Workflow

_SHOW = 40


@dataclass(frozen=True, slots=True)
class Order:
    ticket: Ticket
    wf: Workflow
    org: Org


def workflow_of(ctx: ApiContext, ticket: Ticket) -> Workflow | None:
    """The workflow version the ticket is pinned to, else the current one (as the service does)."""
    return ctx.catalog.get(ticket.workflow_id, ticket.workflow_version) or ctx.catalog.get(ticket.workflow_id)


def _shown(raw: str) -> str:
    text = raw if len(raw) <= _SHOW else raw[: _SHOW - 3] + "..."
    return repr("".join(ch if ch.isprintable() else "?" for ch in text))


def ticket_id_from(raw: Any) -> int:
    """The ticket id of an order_no given as a string (or, in a JSON body, an integer)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise unknown_order("order_no is required")
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        raise unknown_order("order_no must be a string of 19 digits")
    ticket_id = ticket_id_of(raw.strip())
    if ticket_id is None:
        raise unknown_order(f"order_no must be 19 digits, got {_shown(raw)}")
    return ticket_id


def sees(who: Caller, ticket: Ticket, wf: Workflow, org: Org) -> bool:
    return (
        not ticket.is_deleted
        and is_template(wf)
        and who.may_use(wf.id)
        and can_view(ticket, wf, org, who.username)
    )


def _seen_text(ticket_id: int) -> str:
    try:
        number = order_no(ticket_id)
    except ValueError:
        number = str(ticket_id)
    return f"no work order {number} that you may see"


def not_seen(ticket_id: int) -> WorkOrderError:
    return unknown_order(_seen_text(ticket_id))


async def visible_order(request: web.Request, who: Caller, raw: Any) -> Order:
    """The order `raw` names, if the caller may see it; else 22301 (see the module docstring)."""
    ctx = workorder_context(request).api
    ticket_id = ticket_id_from(raw)
    ticket = await ctx.queries.get_ticket(ticket_id)
    wf = workflow_of(ctx, ticket) if ticket is not None else None
    if ticket is None or wf is None:
        raise not_seen(ticket_id)
    org = await ctx.directory.org()
    if not sees(who, ticket, wf, org):
        raise not_seen(ticket_id)
    return Order(ticket, wf, org)


def still_seen(who: Caller) -> Guard:
    """The same check, run by the service inside the command's transaction."""

    def guard(ticket: Ticket, wf: Workflow, org: Org) -> Rejected | None:
        if sees(who, ticket, wf, org):
            return None
        return Rejected(Reason.NOT_FOUND, _seen_text(ticket.id))

    return guard
