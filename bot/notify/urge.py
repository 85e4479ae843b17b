"""催办: an urge card to each current handler who has a decision to make, throttled.

Throttles (both from the delivery table, so they hold across restarts and processes):
- per ticket: one urge per `ticket_interval` (default 10 minutes), whoever urges;
- per urger: at most `per_hour` distinct tickets urged in the last hour.
WeCom's own limit (30 messages a minute to one person) is respected by the client underneath.
Planning is idempotent within a throttle window (the dedupe key holds the window number), so two
urges racing each other send one card per handler.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from bot.notify.notifier import Notifier
from bot.notify.plan import addressed, wanted_cards
from bot.notify.ports import URGE, NewDelivery
from core.access import can_view
from core.ports import Clock, Directory, TicketQueries, UrgeOutcome, WorkflowCatalog

log = logging.getLogger("ticketbot.urge")

TICKET_INTERVAL = timedelta(minutes=10)
PER_HOUR = 20
NOTE_MAX = 100


class ChatUrger:
    def __init__(
        self,
        notifier: Notifier,
        queries: TicketQueries,
        catalog: WorkflowCatalog,
        directory: Directory,
        clock: Clock,
        *,
        ticket_interval: timedelta = TICKET_INTERVAL,
        per_hour: int = PER_HOUR,
    ) -> None:
        self._notifier = notifier
        self._queries = queries
        self._catalog = catalog
        self._directory = directory
        self._clock = clock
        self._interval = ticket_interval
        self._per_hour = per_hour

    async def urge(self, ticket_id: int, actor: str, note: str = "") -> UrgeOutcome:
        ticket = await self._queries.get_ticket(ticket_id)
        org = await self._directory.org()
        wf = None
        if ticket is not None:
            wf = self._catalog.get(ticket.workflow_id, ticket.workflow_version) or self._catalog.get(
                ticket.workflow_id
            )
        if ticket is None or wf is None or ticket.is_deleted or not can_view(ticket, wf, org, actor):
            return UrgeOutcome(False, "not_found", f"ticket {ticket_id} was not found or you may not see it")
        if ticket.is_ended:
            return UrgeOutcome(False, "ended", f"ticket {ticket.sn} has ended; there is nobody to urge")
        handlers = sorted(wanted_cards(ticket, wf, org))
        if not handlers:
            return UrgeOutcome(
                False, "no_handlers", f"ticket {ticket.sn} is not waiting for a person's decision"
            )
        store = self._notifier.store
        now = self._clock.now()
        last = await store.last_urge_at(ticket.id)
        if last is not None and now - last < self._interval:
            wait = max(1, math.ceil((last + self._interval - now).total_seconds()))
            return UrgeOutcome(
                False,
                "too_soon",
                f"ticket {ticket.sn} was urged a moment ago; try again in {wait} s",
                retry_after=wait,
            )
        if await store.urged_tickets_since(actor, now - timedelta(hours=1)) >= self._per_hour:
            return UrgeOutcome(
                False, "too_many", f"you urged {self._per_hour} tickets in the last hour", retry_after=3600
            )
        window = int(now.timestamp() // max(1.0, self._interval.total_seconds()))
        platforms = {name: sender.address_of for name, sender in self._notifier.senders.items()}
        new: list[NewDelivery] = []
        reached: list[str] = []
        for username in handlers:
            mine = addressed(
                ticket,
                org,
                username,
                platforms,
                kind=URGE,
                key=f"{ticket.id}:{window}:{username}",
                actor=actor,
                note=" ".join(note.split())[:NOTE_MAX],
            )
            new += mine
            if mine:
                reached.append(username)
        if not new:
            return UrgeOutcome(
                False, "unreachable", f"no handler of ticket {ticket.sn} can be reached on a chat platform"
            )
        await store.commit_plan((), new, (), (), now)
        self._notifier.kick()
        log.info(
            "ticket urged", extra={"ticket_id": ticket.id, "urger": actor, "handlers": ",".join(reached)}
        )
        return UrgeOutcome(True, message=f"urged {', '.join(reached)}", reached=tuple(reached))
