"""The notifier: outbox events -> planned deliveries -> cards sent, cards closed.

One pass (`run_once`):
1. plan: the pending outbox events, grouped by ticket; per ticket, `plan()` against the ticket as
   it is now and its open deliveries; the plan and the "events planned" mark are committed in one
   transaction (store.commit_plan), so an event is planned exactly once and never lost;
2. send: every due planned delivery. The card is built when it is sent, from the ticket as it is
   then; a button card whose buttons are gone by then is cancelled, not sent;
3. close: every due close. The card becomes a result card in place where the platform still allows
   it (WeCom: its single-use response_code, kept 24 h; DingTalk: by outTrackId); otherwise (a code
   used or expired) a fresh result message is sent instead.

Sends and closes are *claimed* for this worker (`worker`, until `lease` runs out; PostgreSQL:
FOR UPDATE SKIP LOCKED), so several processes share the queue and no delivery is sent twice; a
claim left by a worker that died is taken over once its lease has expired.

Failures are retried with exponential backoff and full jitter (`SendFailed.retry_after` is the
floor); a delivery that keeps failing ends "dead" (sends; logged at ERROR) or closed with the error
(closes) after the store's attempt limit. A send that would exceed the recipient's message limit
(bot.notify.ratelimit; WeCom: 30/min, 1000/h per person) is deferred, not failed, and not counted
as an attempt. The background loop (`start`) runs a pass when kicked (after a ticket change) and
every `poll_seconds` anyway, so a change made by another process is picked up too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bot.cards.build import CARD_ACTIONS, cc_card, pending_card, result_card, urge_card
from bot.cards.model import Card, CardKind
from bot.kicked import KickedLoop
from bot.notify.plan import plan, signature
from bot.notify.ports import (
    BUTTON_KINDS,
    CC,
    DEAD,
    ESCALATE,
    NOTICE,
    URGE,
    Delivery,
    DeliveryStore,
    OutboxEvent,
    Sender,
    SendFailed,
)
from bot.notify.ratelimit import RECIPIENT_LIMITS, Limit, RecipientLimiter
from core.access import allowed_actions
from core.org import Org
from core.ports import Clock, Directory, TicketQueries, WorkflowCatalog
from core.ticket import SYSTEM_USER, Ticket
from core.workflow import Workflow

log = logging.getLogger("ticketbot.notify")

BATCH = 100
RETRY_BASE = 5.0
RETRY_MAX = 3600.0
RETRY_MIN = 1.0
MAX_ROUNDS = 50
CLAIM_LEASE = timedelta(minutes=5)  # longer than any send or close may take (client timeouts)


def backoff(attempts: int, floor: float | None) -> float:
    """Seconds before the next try after `attempts` failures (5 s doubling, at most an hour)."""
    delay: float = min(RETRY_BASE * 2.0 ** min(attempts, 12), RETRY_MAX)
    return max(delay, floor or 0.0)


def jittered_backoff(attempts: int, floor: float | None, rng: random.Random) -> float:
    """`backoff` with full jitter: uniform between RETRY_MIN and the doubling ceiling, so failures
    from one outage don't come back all at once; never below `floor` (the platform's retry-after)."""
    ceiling = backoff(attempts, None)
    return max(rng.uniform(min(RETRY_MIN, ceiling), ceiling), floor or 0.0)


def worker_id() -> str:
    """This process's name on its claims: "host:pid:random"."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Notifier:
    def __init__(
        self,
        store: DeliveryStore,
        queries: TicketQueries,
        catalog: WorkflowCatalog,
        directory: Directory,
        senders: Mapping[str, Sender],
        clock: Clock,
        public_url: str,
        *,
        poll_seconds: float = 2.0,
        link_for: Callable[[int, str], str] | None = None,
        worker: str | None = None,
        lease: timedelta = CLAIM_LEASE,
        rng: random.Random | None = None,
        recipient_limits: Mapping[str, Sequence[Limit]] = RECIPIENT_LIMITS,
    ) -> None:
        """`link_for(ticket_id, username)` is the ticket page's link for that person (a signed one,
        bot.page.links); by default the plain `{public_url}/tickets/{id}`. `worker` names this
        process on its claims (default `worker_id()`), which hold for `lease`; `rng` draws the
        retry jitter; `recipient_limits` are the per-person message limits by platform."""
        self.store = store
        self._queries = queries
        self._catalog = catalog
        self._directory = directory
        self.senders = dict(senders)
        self._clock = clock
        self._public_url = public_url.rstrip("/")
        self._link_for = link_for
        self._loop = KickedLoop("notifier", self.drain, poll_seconds)
        self._lock = asyncio.Lock()
        self._held: set[int] = set()
        self.worker = worker or worker_id()
        self._lease = lease
        self._rng = rng or random.SystemRandom()
        self.limiter = RecipientLimiter(recipient_limits)

    # ---------------------------------------------------------------- loop

    def kick(self) -> None:
        """Something changed: run a pass soon."""
        self._loop.kick()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def drain(self) -> int:
        """Run passes until nothing is due; returns how many items were handled."""
        total = 0
        for _ in range(MAX_ROUNDS):
            handled = await self.run_once()
            total += handled
            if handled == 0:
                break
        return total

    async def run_once(self) -> int:
        async with self._lock:
            return await self._plan() + await self._sends() + await self._closes()

    # ---------------------------------------------------------------- helpers

    def _workflow(self, ticket: Ticket) -> Workflow | None:
        return self._catalog.get(ticket.workflow_id, ticket.workflow_version) or self._catalog.get(
            ticket.workflow_id
        )

    def _link(self, ticket_id: int, recipient: str) -> str:
        """The ticket page's link in a card, for the card's recipient."""
        if self._link_for is not None:
            return self._link_for(ticket_id, recipient)
        return f"{self._public_url}/tickets/{ticket_id}"

    # ---------------------------------------------------------------- 1. plan

    async def _plan(self) -> int:
        events = await self.store.pending_events(BATCH)
        if not events:
            return 0
        now = self._clock.now()
        by_ticket: dict[int, list[OutboxEvent]] = defaultdict(list)
        orphans: list[int] = []
        for event in events:
            if event.ticket_id is None:
                orphans.append(event.id)
            else:
                by_ticket[event.ticket_id].append(event)
        if orphans:
            await self.store.commit_plan(orphans, (), (), (), now)
        org = await self._directory.org()
        for ticket_id, ticket_events in by_ticket.items():
            try:
                await self.plan_ticket(ticket_id, ticket_events, org, now)
            except Exception:  # one ticket must not stop the others; its events stay pending
                log.exception("planning a ticket's deliveries failed", extra={"ticket_id": ticket_id})
        return len(events)

    async def plan_ticket(
        self,
        ticket_id: int,
        events: list[OutboxEvent],
        org: Org | None = None,
        now: datetime | None = None,
    ) -> None:
        """Plan one ticket (also used after a refused click, with no events)."""
        org = org or await self._directory.org()
        address_of = {name: sender.address_of for name, sender in self.senders.items()}
        now = now or self._clock.now()
        ids = [e.id for e in events]
        ticket = await self._queries.get_ticket(ticket_id)
        wf = self._workflow(ticket) if ticket is not None else None
        if ticket is None or wf is None:
            log.warning("outbox events for an unknown ticket or workflow", extra={"ticket_id": ticket_id})
            await self.store.commit_plan(ids, (), (), (), now)
            return
        opened = await self.store.open_for_ticket(ticket_id)
        p = plan(ticket, wf, org, events, opened, address_of)
        await self.store.commit_plan(ids, p.new, p.closes, p.cancels, now)
        if not p.empty:
            log.info(
                "deliveries planned",
                extra={
                    "ticket_id": ticket_id,
                    "events": len(ids),
                    "new": len(p.new),
                    "closes": len(p.closes),
                    "cancels": len(p.cancels),
                },
            )

    # ---------------------------------------------------------------- 2. send

    async def _sends(self) -> int:
        due = await self.store.claim_due_sends(self.worker, self._clock.now(), BATCH, self._lease)
        if not due:
            return 0
        org = await self._directory.org()
        for d in due:
            try:
                wait = self.limiter.wait(d.platform, d.address, self._clock.now())
                if wait > 0:
                    await self._defer(d, wait, f"over the recipient's message limit on {d.platform}")
                    continue
                await self._send(d, org)
            except Exception as exc:  # a bug or an unexpected answer must not block the others
                await self._crashed(d, exc, close=False)
        return len(due)

    def _card(self, d: Delivery, ticket: Ticket, wf: Workflow, org: Org) -> tuple[Card | None, str]:
        """The card for a planned delivery and its button signature; (None, why) if it is moot."""
        now = self._clock.now()
        link = self._link(ticket.id, d.recipient)
        if d.kind in BUTTON_KINDS:
            if ticket.is_ended or ticket.is_deleted or ticket.state_id != d.state_id:
                return None, "the ticket moved on before the card was sent"
            actions = [a for a in allowed_actions(ticket, wf, org, d.recipient) if a.kind in CARD_ACTIONS]
            if not actions:
                return None, "the recipient no longer has a decision to make"
            if d.kind == URGE:
                card = urge_card(ticket, wf, org, d.recipient, actions, urger=d.actor, link_url=link, now=now)
                if d.note and d.actor == SYSTEM_USER:  # an SLA reminder or urge says it all itself
                    card = replace(card, subtitle=d.note)
                elif d.note:
                    card = replace(card, subtitle=f"{card.subtitle}：{d.note}")
            else:
                card = pending_card(ticket, wf, org, d.recipient, actions, link_url=link, now=now)
            return card, signature(actions)
        if d.kind == CC:
            return cc_card(ticket, wf, org, link_url=link), ""
        if d.kind == NOTICE:
            base = result_card(ticket, wf, org, None, link_url=link, now=now)
            subtitle = "你的工单已结束" if ticket.is_ended else "你的工单有新进展"
            return replace(base, kind=CardKind.INFO, subtitle=subtitle, result_text=d.note), ""
        if d.kind == ESCALATE:  # read-only: the leader is told, the handlers keep the decision
            if ticket.is_ended or ticket.is_deleted or ticket.state_id != d.state_id:
                return None, "the ticket moved on before the escalation was sent"
            base = result_card(ticket, wf, org, None, link_url=link, now=now)
            return replace(base, kind=CardKind.INFO, subtitle=d.note, result_text=base.subtitle), ""
        return None, f"unknown delivery kind {d.kind!r}"

    async def _send(self, d: Delivery, org: Org) -> None:
        now = self._clock.now()
        sender = self.senders.get(d.platform)
        ticket = await self._queries.get_ticket(d.ticket_id)
        wf = self._workflow(ticket) if ticket is not None else None
        if sender is None or ticket is None or wf is None:
            why = "platform not enabled" if sender is None else "ticket or workflow not found"
            await self.store.cancel(d.id, why, now)
            return
        card, sig = self._card(d, ticket, wf, org)
        if card is None:
            await self.store.cancel(d.id, sig, now)
            log.info("delivery cancelled", extra={"ticket_id": d.ticket_id, "delivery": d.id, "why": sig})
            return
        try:
            ref = await sender.send_card(d, card)
        except SendFailed as exc:
            await self._failed(d, exc, close=False)
            return
        self.limiter.record(d.platform, d.address, now)
        live = bool(card.buttons)
        await self.store.mark_sent(
            d.id,
            task_id=ref.task_id,
            msg_id=ref.msg_id,
            response_code=ref.response_code,
            code_expires_at=now + ref.code_ttl if ref.code_ttl is not None else None,
            state_id=ticket.state_id,
            version=ticket.version,
            actions=sig if live else "",
            live=live,
            now=now,
        )
        log.info(
            "card sent",
            extra={
                "ticket_id": d.ticket_id,
                "delivery": d.id,
                "platform": d.platform,
                "kind": d.kind,
                "to": d.recipient,
                "msg_id": ref.msg_id,
            },
        )

    async def _crashed(self, d: Delivery, exc: Exception, *, close: bool) -> None:
        """An unexpected error on one delivery: logged with its stack, retried with backoff like a
        failure (so a delivery that always fails ends dead instead of blocking the queue)."""
        log.exception(
            "delivery crashed", extra={"ticket_id": d.ticket_id, "delivery": d.id, "to": d.recipient}
        )
        await self._failed(d, SendFailed(f"{type(exc).__name__}: {exc}", retry_after=RETRY_BASE), close=close)

    async def _defer(self, d: Delivery, wait: float, why: str) -> None:
        """Send `d` later without counting an attempt (a rate limit, not a failure)."""
        now = self._clock.now()
        await self.store.defer(d.id, now + timedelta(seconds=max(wait, RETRY_MIN)), now)
        log.info(
            "delivery deferred",
            extra={
                "ticket_id": d.ticket_id,
                "delivery": d.id,
                "platform": d.platform,
                "to": d.recipient,
                "why": why,
                "retry_in_s": round(max(wait, RETRY_MIN)),
            },
        )

    async def _failed(self, d: Delivery, exc: SendFailed, *, close: bool) -> None:
        now = self._clock.now()
        if exc.rate_limited and not close:
            await self._defer(d, exc.retry_after or RETRY_BASE, str(exc))
            return
        if exc.retry_after is None and not close:
            await self.store.cancel(d.id, f"refused: {exc}", now)
            log.warning(
                "delivery refused by the platform; not retried",
                extra={"ticket_id": d.ticket_id, "delivery": d.id, "to": d.recipient, "error": str(exc)},
            )
            return
        delay = jittered_backoff(d.attempts, exc.retry_after, self._rng)
        status = await self.store.retry_later(d.id, str(exc), now + timedelta(seconds=delay), close=close)
        if status == DEAD:
            log.error(
                "delivery dead: given up after repeated failures (`ticketbot outbox retry %s` resends it)",
                d.id,
                extra={
                    "ticket_id": d.ticket_id,
                    "delivery": d.id,
                    "platform": d.platform,
                    "to": d.recipient,
                    "kind": d.kind,
                    "attempts": d.attempts + 1,
                    "error": str(exc),
                },
            )
            return
        log.warning(
            "delivery failed; retrying",
            extra={
                "ticket_id": d.ticket_id,
                "delivery": d.id,
                "to": d.recipient,
                "error": str(exc),
                "retry_in_s": round(delay),
                "status": status,
            },
        )

    # ---------------------------------------------------------------- 3. close

    def hold(self, delivery_id: int) -> None:
        """Leave this card's close alone while a platform answers a click with it (see
        `result_card`); `release` when done."""
        self._held.add(delivery_id)

    def release(self, delivery_id: int) -> None:
        self._held.discard(delivery_id)

    async def result_card(self, d: Delivery, org: Org | None = None) -> Card | None:
        """The card `d` becomes when it is closed: the ticket as it is now and its last action
        (None if the ticket or its workflow is gone)."""
        ticket = await self._queries.get_ticket(d.ticket_id)
        wf = self._workflow(ticket) if ticket is not None else None
        if ticket is None or wf is None:
            return None
        org = org or await self._directory.org()
        logs = await self._queries.flow_logs(ticket.id, desc=True)
        now = self._clock.now()
        card = result_card(
            ticket, wf, org, logs[0] if logs else None, link_url=self._link(ticket.id, d.recipient), now=now
        )
        return replace(card, result_text=d.close_note) if d.close_note else card

    async def _closes(self) -> int:
        claimed = await self.store.claim_due_closes(self.worker, self._clock.now(), BATCH, self._lease)
        if not claimed:
            return 0
        due = [d for d in claimed if d.id not in self._held]
        org = await self._directory.org() if due else None
        for d in claimed:
            if d.id in self._held or org is None:  # a click is answering it: leave it to the click
                await self.store.unclaim(d.id, self.worker)
                continue
            try:
                await self._close(d, org)
            except Exception as exc:
                await self._crashed(d, exc, close=True)
        return len(due)

    async def _close(self, d: Delivery, org: Org) -> None:
        now = self._clock.now()
        sender = self.senders.get(d.platform)
        card = await self.result_card(d, org) if sender is not None else None
        if sender is None or card is None:
            await self.store.mark_closed(d.id, now, error="platform, ticket or workflow gone")
            return
        usable = sender.can_update(d, now)
        if usable:
            try:
                await sender.update_card(d, card)
            except SendFailed as exc:
                if not exc.code_used:
                    await self._failed(d, exc, close=True)
                    return
                usable = False
        if not usable:
            try:  # the card can't be changed any more: tell the person in a fresh message
                await sender.send_card(d, replace(card, kind=CardKind.INFO), fresh=1 + d.attempts)
            except SendFailed as exc:
                await self._failed(d, exc, close=True)
                return
            self.limiter.record(d.platform, d.address, now)
        await self.store.mark_closed(d.id, now, used_code=d.response_code)
        log.info(
            "card closed" if usable else "card expired; result sent as a new message",
            extra={"ticket_id": d.ticket_id, "delivery": d.id, "to": d.recipient, "msg_id": d.msg_id},
        )
