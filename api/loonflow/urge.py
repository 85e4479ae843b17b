"""POST /api/v1.0/tickets/{id}/urge: 催办, an extension of the loonflow dialect.

loonflow leaves urging to the caller (participant_info lists who to remind). ticketbot sends the
current handlers an urge card on their chat platform, throttled per ticket and per urger.

Body (optional): ``{"suggestion": "请尽快处理"}``, a note shown on the card (``note`` is accepted
too). Answers ``{"code": 0, "data": {"urged": ["lisi", ...]}}``, or a refusal: the ticket doesn't
exist or isn't visible (404 / 403), has ended or waits for nobody who can be reached (409), was
urged a moment ago or the caller urged too many tickets (429; the message ends with
``(retry_after=N)``, N in seconds).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.envelope import ok
from api.errors import ApiError
from api.loonflow.tickets_read import _visible_ticket
from api.params import json_body

_STATUS = {
    "not_found": 404,
    "ended": 409,
    "no_handlers": 409,
    "unreachable": 409,
    "too_soon": 429,
    "too_many": 429,
}


def _note(body: dict[str, Any]) -> str:
    for key in ("suggestion", "note"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ApiError(f"'{key}' must be a string")
        return value
    return ""


async def urge_ticket(request: web.Request) -> web.Response:
    note = _note(await json_body(request))
    ctx, who, ticket, _, _ = await _visible_ticket(request)
    if ctx.urger is None:
        raise ApiError("no chat platform is enabled, so nobody can be urged", 409)
    outcome = await ctx.urger.urge(ticket.id, who.username, note)
    if not outcome.ok:
        msg = outcome.message
        if outcome.retry_after:
            msg = f"{msg} (retry_after={outcome.retry_after})"
        raise ApiError(msg, _STATUS.get(outcome.reason, 409))
    return ok({"urged": list(outcome.reached)})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(r"/tickets/{ticket_id:[0-9]+}/urge", urge_ticket)
