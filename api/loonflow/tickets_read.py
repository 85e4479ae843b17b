"""The read side of loonflow's ticket API: list, detail, transitions, flow logs, steps, participants
and the batch state lookup. Shapes: api.loonflow.views.

Behaviour, and where it differs from loonflow (r2.0.20) on purpose:

- Every route needs the calling app to be allowed the ticket's workflow (apps.yaml `workflows`;
  else 403 "app 'x' may not use workflow N"), and the acting user to be allowed to see the ticket
  (core.access.can_view): else 403 "you have no permission to view ticket N". loonflow shows flow
  logs, steps and participants to anyone. An unknown or deleted ticket (or an id out of range, 0
  included) is 404 "ticket N does not exist".
- GET /tickets, category (required): `owner` created by me, `duty` I may act now, `relation`
  created / handled / was asked to handle / involved, `worked` I have acted on, `all` every ticket
  I may see. loonflow's `all` lists every ticket of the app's workflows whoever asks; here `all` is
  the whole workflow for its super admins, admins, interveners and viewers, and for everyone when
  the workflow has `view_permission_check: false`; in the other workflows it is `relation`. (A
  CC'd user may open a ticket that `all` does not list.) When some workflows are seen whole and
  others through `relation`, the two lists are merged, and only the first 10,000 tickets can be
  paged: narrow the query with filters beyond that.
- Filters: sn (prefix), title (contains, any case), create_start / create_end ("YYYY-MM-DD
  HH:MM:SS", "YYYY-MM-DD HH:MM" or "YYYY-MM-DD", UTC unless an offset is given; a date alone as
  create_end means the whole day), workflow_ids / state_ids / ticket_ids (comma lists, at most 1000
  ids), act_state_id (0-5), parent_ticket_id and parent_ticket_state_id (0 or absent: no filter, as
  in loonflow). Without create_start and create_end only tickets of the last 365 days are listed
  (the seed's rule; loonflow r2.0.20 uses three years). reverse "1" (default) newest first, "0"
  oldest first.
- Paging: page >= 1 (default 1); per_page >= 1 (default 10), capped at 100 (the answer's per_page
  says what was used). A page past the end is empty (loonflow repeats the last page).
- Malformed parameters are refused with code -1 and a message naming the parameter.
- Times are UTC, "YYYY-MM-DD HH:MM:SS".
- GET /tickets/states?ticket_ids=1,2 (at most 100 ids) answers only the tickets the user may see;
  others are left out.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from api.context import ApiContext, Caller, caller, context
from api.envelope import ok
from api.errors import ApiError
from api.loonflow import views
from api.params import int_value, query_int
from core.access import allowed_actions, can_intervene, can_view
from core.org import Org
from core.ticket import ActState, Ticket
from core.workflow import Workflow

CATEGORIES = ("all", "owner", "duty", "relation", "worked")
DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100
MAX_IDS = 1000
MAX_STATE_IDS = 100
DEFAULT_WINDOW = timedelta(days=365)
MAX_PAGE = 1_000_000
MAX_SMALL_ID = 2**31 - 1  # workflow and state ids (32-bit columns)
MAX_TICKET_ID = 2**63 - 1  # ticket ids (64-bit columns)
MERGE_LIMIT = 10_000  # `all` over mixed visibility: how deep the merged list can be paged
_STORE_CHUNK = 1000  # the store's largest page

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M")


# --- parameters ------------------------------------------------------------------------------------


def _text(request: web.Request, name: str) -> str | None:
    raw = request.query.get(name, "").strip()
    if _BAD_TEXT.search(raw):
        raise ApiError(f"'{name}' contains a NUL character or an unpaired surrogate")
    if len(raw) > 200:
        raise ApiError(f"'{name}' is longer than 200 characters")
    return raw or None


_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def _flag(request: web.Request, name: str, default: bool) -> bool:
    raw = request.query.get(name, "").strip()
    if raw == "":
        return default
    if raw not in ("0", "1"):
        raise ApiError(f'\'{name}\' must be "0" or "1", got {raw[:40]!r}')
    return raw == "1"


def _int(request: web.Request, name: str, default: int, *, minimum: int, maximum: int) -> int:
    value = query_int(request, name, default, minimum=minimum, maximum=maximum)
    return default if value is None else value


def _ids(
    request: web.Request, name: str, *, limit: int = MAX_IDS, maximum: int = MAX_SMALL_ID
) -> list[int] | None:
    """A comma list of ids, or None when the parameter is absent or empty."""
    raw = request.query.get(name, "")
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        return None
    if len(parts) > limit:
        raise ApiError(f"'{name}' lists {len(parts)} ids; at most {limit} are allowed")
    return [int_value(name, p, minimum=0, maximum=maximum) for p in parts]


def _time(request: web.Request, name: str, *, end: bool) -> datetime | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        return _parse_time(name, raw, end=end)
    except OverflowError:  # e.g. "9999-12-31" as an end, or year 1 with an offset
        raise ApiError(f"'{name}' is out of range: {raw[:40]!r}") from None


def _parse_time(name: str, raw: str, *, end: bool) -> datetime:
    if _DATE_RE.match(raw):
        try:
            day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise ApiError(f"'{name}' is not a valid date: {raw[:40]!r}") from None
        return day + timedelta(days=1) - timedelta(microseconds=1) if end else day
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(
            f'\'{name}\' must look like "2024-05-01 08:30:00" or "2024-05-01" (UTC), got {raw[:40]!r}'
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _paging(request: web.Request) -> tuple[int, int]:
    page = _int(request, "page", 1, minimum=1, maximum=MAX_PAGE)
    per_page = query_int(request, "per_page", DEFAULT_PER_PAGE, minimum=1)
    return page, min(per_page or DEFAULT_PER_PAGE, MAX_PER_PAGE)


def _category(request: web.Request) -> str:
    raw = request.query.get("category", "").strip()
    allowed = ", ".join(CATEGORIES)
    if not raw:
        raise ApiError(f"'category' is required: one of {allowed}")
    if raw not in CATEGORIES:
        raise ApiError(f"'category' must be one of {allowed}, got {raw[:40]!r}")
    return raw


# --- shared loading ----------------------------------------------------------------------------------


def workflow_of(ctx: ApiContext, ticket: Ticket) -> Workflow | None:
    """The workflow version the ticket is pinned to, else the current one (as the service does)."""
    return ctx.catalog.get(ticket.workflow_id, ticket.workflow_version) or ctx.catalog.get(ticket.workflow_id)


async def _visible_ticket(request: web.Request) -> tuple[ApiContext, Caller, Ticket, Workflow, Org]:
    """The ticket of the path, refused unless it exists, the app may use its workflow and the user
    may see it."""
    who = caller(request)
    ctx = context(request)
    raw = request.match_info["ticket_id"]  # digits only (the route's pattern)
    ticket_id = int(raw) if len(raw) <= 40 else 0
    ticket = await ctx.queries.get_ticket(ticket_id) if 1 <= ticket_id <= MAX_TICKET_ID else None
    if ticket is None or ticket.is_deleted:
        shown = raw if len(raw) <= 24 else raw[:21] + "..."
        raise ApiError(f"ticket {shown} does not exist", 404)
    wf = workflow_of(ctx, ticket)
    if wf is None:
        raise ApiError(f"the workflow {ticket.workflow_id} of ticket {ticket_id} is not configured", 404)
    who.require(wf.id)
    org = await ctx.directory.org()
    if not can_view(ticket, wf, org, who.username):
        raise ApiError(f"you have no permission to view ticket {ticket_id}", 403)
    return ctx, who, ticket, wf, org


def sees_whole_workflow(wf: Workflow, org: Org, username: str) -> bool:
    """Whether can_view() holds for every (not deleted) ticket of `wf` for `username`."""
    return (
        can_intervene(wf, org, username)
        or username in wf.permissions.viewers
        or (not wf.view_permission_check and org.active(username))
    )


# --- GET /tickets ----------------------------------------------------------------------------------


async def _first(ctx: ApiContext, count: int, **query: Any) -> tuple[list[Ticket], int]:
    """The first `count` tickets of a query (fetched in store-sized pages) and its total."""
    items: list[Ticket] = []
    total = 0
    page = 1
    while len(items) < count:
        got, total = await ctx.queries.list_tickets(page=page, per_page=_STORE_CHUNK, **query)
        items.extend(got)
        if len(got) < _STORE_CHUNK:
            break
        page += 1
    return items[:count], total


async def _merged(
    ctx: ApiContext,
    parts: Sequence[tuple[str, Collection[int]]],
    page: int,
    per_page: int,
    reverse: bool,
    **query: Any,
) -> tuple[list[Ticket], int]:
    """One page of the union of disjoint queries (different workflows), in the list order."""
    need = page * per_page
    if need > MERGE_LIMIT:
        raise ApiError(
            f"only the first {MERGE_LIMIT} tickets of category 'all' can be paged here; "
            "narrow the query (create_start / create_end, workflow_ids, ...)"
        )
    found: list[Ticket] = []
    total = 0
    for category, workflow_ids in parts:
        items, count = await _first(
            ctx, need, category=category, workflow_ids=workflow_ids, reverse=reverse, **query
        )
        found.extend(items)
        total += count
    found.sort(key=lambda t: (t.created_at, t.id), reverse=reverse)
    return found[(page - 1) * per_page : need], total


async def list_tickets(request: web.Request) -> web.Response:
    who = caller(request)
    ctx = context(request)
    category = _category(request)
    page, per_page = _paging(request)
    reverse = _flag(request, "reverse", True)
    act_state = query_int(
        request, "act_state_id", None, minimum=int(min(ActState)), maximum=int(max(ActState))
    )
    parent_id = _int(request, "parent_ticket_id", 0, minimum=0, maximum=MAX_TICKET_ID)
    parent_state_id = _int(request, "parent_ticket_state_id", 0, minimum=0, maximum=MAX_SMALL_ID)
    create_start = _time(request, "create_start", end=False)
    create_end = _time(request, "create_end", end=True)
    if create_start is None and create_end is None:
        create_start = ctx.clock.now().astimezone(UTC) - DEFAULT_WINDOW
    wanted = _ids(request, "workflow_ids")
    query: dict[str, Any] = {
        "username": who.username,
        "sn_prefix": _text(request, "sn"),
        "title": _text(request, "title"),
        "create_start": create_start,
        "create_end": create_end,
        "state_ids": _ids(request, "state_ids"),
        "ticket_ids": _ids(request, "ticket_ids", maximum=MAX_TICKET_ID),
        "act_state": act_state,
        "parent_ticket_id": parent_id or None,
        "parent_ticket_state_id": parent_state_id or None,
    }

    org = await ctx.directory.org()
    usable = [wf for wf in ctx.catalog.all() if who.may_use(wf.id) and (wanted is None or wf.id in wanted)]
    usable_ids = [wf.id for wf in usable]
    if category == "all":
        whole = [wf.id for wf in usable if sees_whole_workflow(wf, org, who.username)]
        related = [wf_id for wf_id in usable_ids if wf_id not in whole]
        parts = [(c, ids) for c, ids in (("all", whole), ("relation", related)) if ids]
    else:
        parts = [(category, usable_ids)] if usable_ids else []

    tickets: list[Ticket]
    if not parts:
        tickets, total = [], 0
    elif len(parts) == 1:
        tickets, total = await ctx.queries.list_tickets(
            category=parts[0][0],
            workflow_ids=parts[0][1],
            reverse=reverse,
            page=page,
            per_page=per_page,
            **query,
        )
    else:
        tickets, total = await _merged(ctx, parts, page, per_page, reverse, **query)

    value = [views.list_item(t, workflow_of(ctx, t), org) for t in tickets]
    return ok({"value": value, "total": total, "page": page, "per_page": per_page})


# --- GET /tickets/states ----------------------------------------------------------------------------


async def ticket_states(request: web.Request) -> web.Response:
    who = caller(request)
    ctx = context(request)
    ids = _ids(request, "ticket_ids", limit=MAX_STATE_IDS, maximum=MAX_TICKET_ID)
    if ids is None:
        raise ApiError("'ticket_ids' is required: comma-separated ticket ids such as \"1,2,3\"")
    org = await ctx.directory.org()
    usable = [wf.id for wf in ctx.catalog.all() if who.may_use(wf.id)]
    unique = sorted(set(ids))
    tickets, _ = await ctx.queries.list_tickets(
        username=who.username, category="all", ticket_ids=unique, workflow_ids=usable, per_page=len(unique)
    )
    out: dict[str, Any] = {}
    for t in tickets:
        wf = workflow_of(ctx, t)
        if wf is not None and who.may_use(wf.id) and can_view(t, wf, org, who.username):
            out[str(t.id)] = views.ticket_state(t, wf)
    return ok(out)


# --- one ticket ------------------------------------------------------------------------------------


async def ticket_detail(request: web.Request) -> web.Response:
    _, who, ticket, wf, org = await _visible_ticket(request)
    return ok({"value": views.ticket_detail(ticket, wf, org, who.username)})


async def ticket_transitions(request: web.Request) -> web.Response:
    _, who, ticket, wf, org = await _visible_ticket(request)
    return ok({"value": views.transitions(allowed_actions(ticket, wf, org, who.username))})


async def ticket_flowlogs(request: web.Request) -> web.Response:
    with_data = _flag(request, "ticket_data", False)
    desc = _flag(request, "desc", True)
    page, per_page = _paging(request)
    ctx, _, ticket, wf, org = await _visible_ticket(request)
    logs = await ctx.queries.flow_logs(ticket.id, desc=desc)
    window = logs[(page - 1) * per_page : page * per_page]
    value = [views.flow_log(log, ticket, wf, org, with_ticket_data=with_data) for log in window]
    return ok({"value": value, "total": len(logs), "page": page, "per_page": per_page})


async def ticket_flowsteps(request: web.Request) -> web.Response:
    ctx, _, ticket, wf, org = await _visible_ticket(request)
    logs = await ctx.queries.flow_logs(ticket.id, desc=False)
    return ok(views.flow_steps(ticket, wf, logs, org))


async def ticket_participant_info(request: web.Request) -> web.Response:
    _, _, ticket, _, org = await _visible_ticket(request)
    return ok(views.ticket_participants(ticket, org))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/tickets", list_tickets)
    router.add_get("/tickets/states", ticket_states)  # before /tickets/{ticket_id}
    router.add_get(r"/tickets/{ticket_id:[0-9]+}", ticket_detail)
    router.add_get(r"/tickets/{ticket_id:[0-9]+}/transitions", ticket_transitions)
    router.add_get(r"/tickets/{ticket_id:[0-9]+}/flowlogs", ticket_flowlogs)
    router.add_get(r"/tickets/{ticket_id:[0-9]+}/flowsteps", ticket_flowsteps)
    router.add_get(r"/tickets/{ticket_id:[0-9]+}/participant_info", ticket_participant_info)
