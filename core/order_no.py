"""A work order's public number (order_no), as the work-order open API and the chat show it.

order_no = str(ORDER_NO_BASE + ticket_id): 19 or 20 decimal digits, never with a leading zero, e.g.
ticket 1 is "1470000000000000001". Pure functions; `ticket_id_of` is total (None for anything that
is not an order number of a possible ticket).
"""

from __future__ import annotations

import re

ORDER_NO_BASE = 1_470_000_000_000_000_000
MAX_TICKET_ID = 2**63 - 1  # ticket ids are BIGINT
_ORDER_NO_RE = re.compile(r"[1-9][0-9]{18,19}\Z", re.ASCII)


def order_no(ticket_id: int) -> str:
    """The order number of ticket `ticket_id` (1 .. 2**63-1); ValueError for anything else."""
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int) or not 1 <= ticket_id <= MAX_TICKET_ID:
        raise ValueError(f"not a ticket id: {ticket_id!r}")
    return str(ORDER_NO_BASE + ticket_id)


def ticket_id_of(order_no: str) -> int | None:
    """The ticket id an order number names, or None when `order_no` is malformed (not ASCII digits,
    a leading zero, spaces, too short or long, or no ticket id could have it)."""
    if not isinstance(order_no, str) or not _ORDER_NO_RE.match(order_no):
        return None
    ticket_id = int(order_no) - ORDER_NO_BASE
    return ticket_id if 1 <= ticket_id <= MAX_TICKET_ID else None
