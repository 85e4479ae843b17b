"""What the work-order open API (/open-api) is given by the composition root (bot.app)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from api.context import ApiContext
from core.workorder import ChatRecords, Customers, WorkOrders

MAX_CORP_NUMBER = 2**63 - 1


@dataclass(frozen=True, slots=True)
class WorkOrderContext:
    """The loonflow dialect's ApiContext (engine, queries, catalog, directory, apps, clock, nonces)
    plus the work-order side: customers, kept chat records, work-order relations, this
    deployment's numeric corp id and `share_link(ticket_id, username)`, a signed ticket-page link
    for that person (bot.page.links.LinkSigner.link)."""

    api: ApiContext
    customers: Customers
    chat_records: ChatRecords
    work_orders: WorkOrders
    share_link: Callable[[int, str], str] = field(repr=False)
    corp_id: int = 0


WORKORDER_CONTEXT = web.AppKey("workorder_context", WorkOrderContext)


def workorder_context(request: web.Request) -> WorkOrderContext:
    return request.config_dict[WORKORDER_CONTEXT]


def corp_number(corp_id: str) -> int:
    """The numeric corp id the answers carry (``corp_id``: a string at the top level of a work
    order, an integer in its component records, as in the vendor's example): the corp id itself
    when it is all ASCII digits (and fits 63 bits), else the first 62 bits of its SHA-256 (so a
    WeCom corp id such as "ww1a2b..." always gives the same number), 0 when there is none."""
    text = corp_id.strip()
    if not text:
        return 0
    if text.isascii() and text.isdigit() and int(text) <= MAX_CORP_NUMBER:
        return int(text)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 2
