"""The open API's read endpoints (the acting user is the signed ``username`` header)::

    GET /open-api/workorder/detail?order_no=        one order   -> {"work_order": {...}}
    GET /open-api/workorder/list                     orders      -> {"total": N, "workorder_list": [...]}
    GET /open-api/workorder/template/list            templates   -> {"total": N, "template_list": [...]}

The list holds the work orders the caller may see (of the templates the app may use): a whole
template for its admins, interveners and viewers (and everyone when it does not check view
permission), else the orders the caller created, handles, handled or is copied on; newest first.
``limit`` 1-100 (default 30; more is served as 100), ``offset`` from 0; ``start_time`` and
``end_time`` (epoch seconds, inclusive bounds on the creation time) filter only when both are
given; ``title`` keeps orders whose title contains it (any case). When a caller sees some templates
whole and others through their own orders, only the first 10,000 orders can be paged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from api.context import ApiContext, caller
from api.loonflow.tickets_read import sees_whole_workflow
from api.workorder import detail
from api.workorder.components import template_components
from api.workorder.context import WorkOrderContext, workorder_context
from api.workorder.envelope import ok
from api.workorder.errcodes import bad
from api.workorder.orders import visible_order, workflow_of
from api.workorder.params import query_int, query_text
from api.workorder.staff import Staff
from api.workorder.templates import (
    ENABLED,
    TEMPLATE_TYPE_NAMES,
    TEMPLATE_TYPES,
    is_template,
    stage_list,
    template_type,
)
from core.ticket import Ticket
from core.workflow import Workflow
from core.workorder import CUSTOMER

DEFAULT_LIMIT = 30
MAX_LIMIT = 100
MAX_OFFSET = 1_000_000
MAX_EPOCH = 253_402_300_799  # 9999-12-31 23:59:59 UTC
MERGE_LIMIT = 10_000
STORE_CHUNK = 1000


# ------------------------------------------------------------------------------------- detail


async def order_detail(request: web.Request) -> web.Response:
    who = caller(request)
    wctx = workorder_context(request)
    order = await visible_order(request, who, request.query.get("order_no"))
    ticket = order.ticket
    logs = await wctx.api.queries.flow_logs(ticket.id, desc=False)
    relation = (await wctx.work_orders.relations([ticket.id])).get(ticket.id)
    customer = None
    if relation is not None and relation.relation_type == CUSTOMER:
        customer = await wctx.customers.get(relation.relation_id)
    value = detail.work_order(
        ticket,
        order.wf,
        Staff(order.org),
        who.username,
        logs,
        relation=relation,
        customer=customer,
        msg_list=await wctx.chat_records.linked(ticket.id),
        corp_id=wctx.corp_id,
        now=wctx.api.clock.now(),
    )
    return ok(work_order=value)


# --------------------------------------------------------------------------------------- list


def _limit(request: web.Request) -> int:
    value = query_int(request, "limit", minimum=1, maximum=2**31)
    return DEFAULT_LIMIT if value is None else min(value, MAX_LIMIT)


def _window(request: web.Request) -> tuple[datetime | None, datetime | None]:
    start = query_int(request, "start_time", minimum=0, maximum=MAX_EPOCH)
    end = query_int(request, "end_time", minimum=0, maximum=MAX_EPOCH)
    if start is None or end is None:
        return None, None  # the vendor's rule: both or no filter
    if start > end:
        raise bad(f"'start_time' ({start}) is after 'end_time' ({end})")
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)


async def _first(ctx: ApiContext, count: int, **query: Any) -> tuple[list[Ticket], int]:
    items: list[Ticket] = []
    total = 0
    page = 1
    while len(items) < count:
        got, total = await ctx.queries.list_tickets(page=page, per_page=STORE_CHUNK, **query)
        items.extend(got)
        if len(got) < STORE_CHUNK:
            break
        page += 1
    return items[:count], total


async def _slice(
    ctx: ApiContext, parts: Sequence[tuple[str, list[int]]], offset: int, limit: int, **query: Any
) -> tuple[list[Ticket], int]:
    """Tickets [offset, offset + limit) of the union of `parts` (category, template ids)."""
    if not parts:
        return [], 0
    if len(parts) == 1:
        category, ids = parts[0]
        page, skip = offset // limit + 1, offset % limit
        got, total = await ctx.queries.list_tickets(
            category=category, workflow_ids=ids, page=page, per_page=limit, **query
        )
        items = got[skip:]
        if skip and len(got) == limit:
            more, total = await ctx.queries.list_tickets(
                category=category, workflow_ids=ids, page=page + 1, per_page=limit, **query
            )
            items += more
        return items[:limit], total
    need = offset + limit
    if need > MERGE_LIMIT:
        raise bad(
            f"only the first {MERGE_LIMIT} orders of this list can be paged; "
            "narrow it with start_time / end_time or title"
        )
    found: list[Ticket] = []
    total = 0
    for category, ids in parts:
        items, count = await _first(ctx, need, category=category, workflow_ids=ids, **query)
        found.extend(items)
        total += count
    found.sort(key=lambda t: (t.created_at, t.id), reverse=True)
    return found[offset:need], total


def _templates(wctx: WorkOrderContext, request: web.Request) -> list[Workflow]:
    who = caller(request)
    return [wf for wf in wctx.api.catalog.all() if is_template(wf) and who.may_use(wf.id)]


async def order_list(request: web.Request) -> web.Response:
    who = caller(request)
    wctx = workorder_context(request)
    ctx = wctx.api
    limit = _limit(request)
    offset = query_int(request, "offset", minimum=0, maximum=MAX_OFFSET) or 0
    create_start, create_end = _window(request)
    title = query_text(request, "title")
    org = await ctx.directory.org()
    templates = _templates(wctx, request)
    whole = [wf.id for wf in templates if sees_whole_workflow(wf, org, who.username)]
    related = [wf.id for wf in templates if wf.id not in whole]
    parts = [(category, ids) for category, ids in (("all", whole), ("relation", related)) if ids]
    tickets, total = await _slice(
        ctx,
        parts,
        offset,
        limit,
        username=who.username,
        title=title,
        create_start=create_start,
        create_end=create_end,
    )
    relations = await wctx.work_orders.relations([t.id for t in tickets])
    staff = Staff(org)
    now = ctx.clock.now()
    rows = []
    for t in tickets:
        wf = workflow_of(ctx, t)
        if wf is None:
            continue
        logs = await ctx.queries.flow_logs(t.id, desc=False)
        rows.append(detail.list_row(t, wf, staff, who.username, logs, relation=relations.get(t.id), now=now))
    return ok(total=total, workorder_list=rows)


# ----------------------------------------------------------------------------------- templates


async def template_list(request: web.Request) -> web.Response:
    who = caller(request)
    wctx = workorder_context(request)
    wanted = query_int(request, "template_type", minimum=min(TEMPLATE_TYPES), maximum=max(TEMPLATE_TYPES))
    staff = Staff(await wctx.api.directory.org())
    out = []
    for wf in _templates(wctx, request):
        kind = template_type(wf)
        if kind is None or (wanted is not None and kind != wanted):
            continue
        # only the orders the caller may see, as /workorder/list counts them
        whole = sees_whole_workflow(wf, await wctx.api.directory.org(), who.username)
        _, count = await wctx.api.queries.list_tickets(
            username=who.username, category="all" if whole else "relation", workflow_ids=[wf.id], per_page=1
        )
        out.append(
            {
                "id": wf.id,
                "title": wf.name,
                "description": wf.description,
                "template_type": kind,
                "template_type_name": TEMPLATE_TYPE_NAMES[kind],
                "status": ENABLED,
                "count": count,
                "template_stage": stage_list(wf),
                "component_list": template_components(wf, staff),
            }
        )
    return ok(total=len(out), template_list=out)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/workorder/detail", order_detail)
    router.add_get("/workorder/list", order_list)
    router.add_get("/workorder/template/list", template_list)
