"""Read-side queries for the API: ticket lists (loonflow categories and filters), flow logs.

The duty / relation / worked categories go through ticket_user (indexed by username first), so
they cost a few index range scans, not a scan of the tickets. Deleted tickets are never listed.
Permission filtering (who may see which workflows) is the caller's: pass `workflow_ids`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, FromClause, and_, false, func, select, true

from core.ticket import FlowLog, Ticket
from store.db import Database
from store.errors import StoreError
from store.rows import log_from_row, ticket_from_row
from store.tables import flow_log, ticket, ticket_request, ticket_user

Category = Literal["all", "owner", "duty", "relation", "worked"]
CATEGORIES: tuple[str, ...] = get_args(Category)
MAX_PER_PAGE = 1000


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise StoreError(f"{name} must be a timezone-aware datetime")
    return value


def _prefix(column: ColumnElement[str], prefix: str, dialect: str) -> ColumnElement[bool]:
    """`column` starts with `prefix`, case-sensitively, in a form that can use a btree index."""
    if dialect == "postgresql":  # served by the varchar_pattern_ops index
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(escaped + "%", escape="\\")
    # SQLite's LIKE is case-insensitive and skips the index; a range over the BINARY-collated
    # unique index is exact (UTF-8 byte order is code point order).
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # skip the surrogates: they are not characters
        last = 0xE000
    upper = prefix[:-1] + chr(last) if last <= 0x10FFFF else None
    lower = column >= prefix
    return lower if upper is None else and_(lower, column < upper)


def _in(column: ColumnElement[int], values: Collection[int]) -> ColumnElement[bool]:
    return column.in_(sorted(set(values))) if values else false()


async def list_tickets(
    db: Database,
    *,
    username: str,
    category: Category = "all",
    sn_prefix: str | None = None,
    title: str | None = None,
    create_start: datetime | None = None,
    create_end: datetime | None = None,
    workflow_ids: Collection[int] | None = None,
    state_ids: Collection[int] | None = None,
    ticket_ids: Collection[int] | None = None,
    act_state: int | None = None,
    parent_ticket_id: int | None = None,
    parent_ticket_state_id: int | None = None,
    reverse: bool = True,
    page: int = 1,
    per_page: int = 10,
) -> tuple[list[Ticket], int]:
    """One page of tickets and the total count. Newest first unless `reverse` is False.

    Categories (for `username`): all; owner (created); duty (may act now); relation (created,
    handled, was ever asked to handle, or named in the ticket's relation); worked (has acted).
    A filter given as None is not applied; an empty id collection matches nothing.
    `title` matches a case-insensitive substring; `sn_prefix` the start of the SN; create_start /
    create_end are inclusive bounds on created_at.
    """
    if category not in CATEGORIES:
        raise StoreError(f"unknown category {category!r} (use one of {', '.join(CATEGORIES)})")
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise StoreError(f"page must be >= 1 and per_page within 1..{MAX_PER_PAGE}")
    c = ticket.c
    where: list[ColumnElement[bool]] = [c.is_deleted.is_(False)]
    source: FromClause = ticket
    if category == "owner":
        where.append(c.creator == username)
    elif category != "all":
        # the person's ticket ids first (a materialised CTE, one ticket_user row per ticket and
        # person), then their tickets: a top-N over their own rows, instead of the planner
        # walking every ticket by date hoping to meet theirs
        tu = ticket_user.c
        mine_q = select(tu.ticket_id).where(tu.username == username)
        if category == "duty":
            mine_q = mine_q.where(tu.is_current == true())
        elif category == "worked":
            mine_q = mine_q.where(tu.worked == true())
        mine = mine_q.cte("mine").prefix_with("MATERIALIZED")
        source = ticket.join(mine, mine.c.ticket_id == c.id)
    if sn_prefix:
        where.append(_prefix(c.sn, sn_prefix, db.dialect))
    if title:
        where.append(c.title.icontains(title, autoescape=True))
    if _aware("create_start", create_start) is not None:
        where.append(c.created_at >= create_start)
    if _aware("create_end", create_end) is not None:
        where.append(c.created_at <= create_end)
    if workflow_ids is not None:
        where.append(_in(c.workflow_id, workflow_ids))
    if state_ids is not None:
        where.append(_in(c.state_id, state_ids))
    if ticket_ids is not None:
        where.append(_in(c.id, ticket_ids))
    if act_state is not None:
        where.append(c.act_state == int(act_state))
    if parent_ticket_id is not None:
        where.append(c.parent_ticket_id == parent_ticket_id)
    if parent_ticket_state_id is not None:
        where.append(c.parent_ticket_state_id == parent_ticket_state_id)

    order = (c.created_at.desc(), c.id.desc()) if reverse else (c.created_at.asc(), c.id.asc())
    async with db.read() as conn:
        total = int((await conn.execute(select(func.count()).select_from(source).where(*where))).scalar_one())
        if total == 0 or (page - 1) * per_page >= total:
            return [], total
        result = await conn.execute(
            select(ticket)
            .select_from(source)
            .where(*where)
            .order_by(*order)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        return [ticket_from_row(r) for r in result.mappings()], total


async def get_ticket(db: Database, ticket_id: int) -> Ticket | None:
    """One ticket (deleted ones too: `is_deleted` is on the snapshot), outside any write."""
    async with db.read() as conn:
        result = await conn.execute(select(ticket).where(ticket.c.id == ticket_id))
        row = result.mappings().first()
        return None if row is None else ticket_from_row(row)


async def ticket_for_request(db: Database, request_key: str) -> Ticket | None:
    """The ticket `request_key` created (store.tables.ticket_request), if any; None for a key that
    changed a ticket without creating it."""
    async with db.read() as conn:
        result = await conn.execute(
            select(ticket)
            .join(ticket_request, ticket_request.c.ticket_id == ticket.c.id)
            .where(ticket_request.c.request_key == request_key, ticket_request.c.command == "create")
        )
        row = result.mappings().first()
        return None if row is None else ticket_from_row(row)


async def flow_logs(db: Database, ticket_id: int, desc: bool = True) -> list[FlowLog]:
    """A ticket's flow log, newest first unless `desc` is False."""
    order = flow_log.c.id.desc() if desc else flow_log.c.id.asc()
    async with db.read() as conn:
        result = await conn.execute(select(flow_log).where(flow_log.c.ticket_id == ticket_id).order_by(order))
        return [log_from_row(r) for r in result.mappings()]


class SqlTicketQueries:
    """core.ports.TicketQueries over this module's functions."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def list_tickets(self, **kw: Any) -> tuple[list[Ticket], int]:
        return await list_tickets(self._db, **kw)

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        return await get_ticket(self._db, ticket_id)

    async def flow_logs(self, ticket_id: int, desc: bool = True) -> list[FlowLog]:
        return await flow_logs(self._db, ticket_id, desc)

    async def ticket_for_request(self, request_key: str) -> Ticket | None:
        return await ticket_for_request(self._db, request_key)
