"""Replay: send a ticket's current cards again (`ticketbot outbox replay --ticket N`).

After an outage, or when a platform message was deleted, the people who must act on a ticket may
have no usable card although the ledger says one was sent. A replay plans a FRESH pending card for
every current handler with a one-click decision, on every platform where they have an address,
whatever was sent before (a new dedupe key per replay). A card already planned and not yet sent is
not doubled. The old cards stay as they are; like every live card of the ticket, they are closed
when someone acts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.notify.plan import AddressOf, addressed, wanted_cards
from bot.notify.ports import BUTTON_KINDS, PENDING, PLANNED, Delivery, NewDelivery
from core.org import Org
from core.ticket import Ticket
from core.workflow import Workflow


@dataclass(frozen=True, slots=True)
class Replay:
    new: tuple[NewDelivery, ...]
    notes: tuple[str, ...]  # why someone gets nothing (no address, a card already queued, ...)


def replay(
    ticket: Ticket,
    wf: Workflow,
    org: Org,
    open_deliveries: Sequence[Delivery],
    platforms: Mapping[str, AddressOf],
    token: str,
) -> Replay:
    """The fresh cards for `ticket`'s current handlers; `token` makes this replay's dedupe keys."""
    if ticket.is_deleted:
        return Replay((), (f"ticket {ticket.id} is deleted",))
    if ticket.is_ended:
        return Replay((), (f"ticket {ticket.id} has ended: nobody has a card to act on",))
    if not platforms:
        return Replay((), ("no chat platform is enabled (WeCom or DingTalk settings)",))
    wanted = wanted_cards(ticket, wf, org)
    if not wanted:
        return Replay((), (f"nobody has a one-click decision on ticket {ticket.id} in its current state",))
    queued = {
        (d.platform, d.recipient)
        for d in open_deliveries
        if d.kind in BUTTON_KINDS and d.status == PLANNED and d.state_id == ticket.state_id
    }
    new: list[NewDelivery] = []
    notes: list[str] = []
    for username in wanted:
        skip = {p for p, who in queued if who == username}
        made = addressed(
            ticket,
            org,
            username,
            platforms,
            kind=PENDING,
            key=f"{ticket.id}:{ticket.version}:{username}:replay:{token}",
            skip=skip,
        )
        new += made
        for platform in sorted(skip & set(platforms)):
            notes.append(f"{username}: a card on {platform} is already queued and not sent yet")
        if not made and not skip:
            notes.append(
                f"{username}: not reachable (inactive, or no address on {', '.join(sorted(platforms))})"
            )
    return Replay(tuple(new), tuple(notes))
