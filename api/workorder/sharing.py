"""POST /open-api/workorder/share {order_no, staff_id?}: a signed link to the order's ticket page
(bot.page) for the acting user. Whoever holds the link sees the page and acts on it as that person
until it expires (TICKETBOT_LINK_TTL_HOURS), so it is only ever issued to the person it names:
`staff_id`, when given, must be the acting user. To share an order with someone else, copy them on
it (/open-api/workorder/cc): they are told in chat, with a link signed for them.

-> ``{"errcode": 0, "errmsg": "ok", "order_no": "...", "staff_id": "...", "url": "https://..."}``
"""

from __future__ import annotations

from aiohttp import web

from api.context import caller
from api.workorder import params
from api.workorder.context import workorder_context
from api.workorder.envelope import ok
from api.workorder.errcodes import ErrCode, WorkOrderError
from api.workorder.orders import visible_order
from api.workorder.staff import Staff
from api.workorder.steps import number
from core.access import can_view

SHARE_KEYS = frozenset({"order_no", "staff_id"})


async def share(request: web.Request) -> web.Response:
    who = caller(request)
    data = await params.body(request, SHARE_KEYS)
    order = await visible_order(request, who, data.get("order_no"))
    staff = Staff(order.org)
    target = params.person(data, "staff_id", staff) or who.username
    if target != who.username:
        raise WorkOrderError(
            ErrCode.NO_PERMISSION,
            f"a share link acts as the person it names, so it is only issued to them: ask as "
            f"{staff.id_of(target)}, or copy them on work order {number(order)} "
            "(/open-api/workorder/cc) and they get their own link in chat",
        )
    if not can_view(order.ticket, order.wf, order.org, target):
        raise WorkOrderError(
            ErrCode.NO_PERMISSION,
            f"{staff.id_of(target)} may not see work order {number(order)}; copy them on it first",
        )
    url = workorder_context(request).share_link(order.ticket.id, target)
    return ok(order_no=number(order), staff_id=staff.id_of(target), url=url)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/workorder/share", share)
