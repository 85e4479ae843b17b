"""The due-work runner: timers, reminders, urges and escalations that have come due.

Each pass (`run_once`, the scheduler's "due-work" job) claims due rows (store.due_work; on
PostgreSQL ``FOR UPDATE SKIP LOCKED``, so several workers never take the same row) and does each:

- ``timer``: `FireTimer` through the engine as the system user. The engine refuses it as STALE
  when the ticket has left the state (or re-entered it) since the timer was set: skipped.
- ``remind`` / ``urge``: an urge card (催办, with the handler's buttons) to each current handler
  who has a decision to make, from the system (actor ``system``), saying how long the ticket
  has waited: "提醒：工单已在「部门领导审批」等待 4 小时".
- ``escalate``: the department leader(s) of the current handlers are added to the ticket's CC
  through the engine (`Escalate`, so the ticket's link opens for them) and get a read-only notice
  (kind ``escalate``) with the link; the handlers keep the decision.

Work for a ticket that has ended, was deleted, or is no longer in the state (entered at the same
time) the work was planned for is `skipped`. A failure is retried with backoff (dead after the
store's attempt limit). Cards go through the notifier's deliveries, whose dedupe keys hold the
due-work id: doing a row twice (a lease ran out) plans its cards once.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from bot.cards.build import alias
from bot.notify.notifier import Notifier
from bot.notify.plan import addressed, wanted_cards
from bot.notify.ports import ESCALATE, URGE, NewDelivery
from core.commands import Escalate, FireTimer
from core.errors import Reason, Rejected
from core.org import Org
from core.ports import Clock, Directory, TicketQueries, WorkflowCatalog
from core.service import Done, TicketService
from core.ticket import SYSTEM_USER, Ticket
from core.workflow import Sla, State, Workflow

log = logging.getLogger("ticketbot.due_work")

TIMER, REMIND, URGE_KIND, ESCALATE_KIND = "timer", "remind", "urge", "escalate"
BATCH = 50
LEASE = timedelta(minutes=5)
RETRY_BASE = 30.0
RETRY_MAX = 3600.0
MAX_ROUNDS = 20


class DueItem(Protocol):
    """One claimed row of due work (store.due_work.DueWork)."""

    @property
    def id(self) -> int: ...
    @property
    def ticket_id(self) -> int: ...
    @property
    def state_id(self) -> int: ...
    @property
    def state_entered_at(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def transition_id(self) -> int: ...
    @property
    def step(self) -> int: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def attempts(self) -> int: ...


class DueWorkStore(Protocol):
    """What the runner needs of storage (store.due_work.SqlDueWork)."""

    async def claim_due(self, worker: str, now: datetime, limit: int, lease: timedelta) -> Sequence[DueItem]:
        """Due pending rows, claimed for `worker` until now + lease; earliest first."""
        ...

    async def mark_done(self, id: int, worker: str, now: datetime) -> bool: ...

    async def mark_skipped(self, id: int, worker: str, reason: str, now: datetime) -> bool: ...

    async def mark_dead(self, id: int, worker: str, error: str, now: datetime) -> bool: ...

    async def retry_later(self, id: int, worker: str, error: str, retry_at: datetime) -> str | None: ...


def default_worker() -> str:
    """A name for this process among the workers sharing the database."""
    return f"{socket.gethostname()}:{os.getpid()}"


def human(duration: timedelta) -> str:
    """ "4 小时", "1 天", "30 分钟", "1 天 2 小时" (whole minutes)."""
    minutes = max(0, int(duration.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((days, "天"), (hours, "小时"), (mins, "分钟")) if n]
    return " ".join(parts) or "不到 1 分钟"


def sla_after(sla: Sla | None, kind: str, step: int) -> timedelta | None:
    """How long after entering the state the `kind` / `step` of `sla` is due (None: unknown)."""
    if sla is None:
        return None
    if kind == REMIND and sla.remind_after is not None:
        return sla.remind_after + step * (sla.remind_every or timedelta(0))
    if kind == URGE_KIND:
        return sla.urge_after
    if kind == ESCALATE_KIND:
        return sla.escalate_after
    return None


def leaders_of(org: Org, handlers: Sequence[str]) -> list[str]:
    """The department leaders of `handlers` (the nearest active leader up the tree who is not the
    handler), without the handlers themselves."""
    out: list[str] = []
    for username in handlers:
        user = org.user(username)
        if user is None:
            continue
        for dept_id in user.dept_ids:
            dept = org.departments.get(dept_id)
            seen: set[int] = set()
            while dept is not None and dept.id not in seen:
                seen.add(dept.id)
                if dept.leader and dept.leader != username and org.active(dept.leader):
                    out.append(dept.leader)
                    break
                dept = org.departments.get(dept.parent_id) if dept.parent_id else None
    return [u for u in dict.fromkeys(out) if u not in handlers]


class DueWorkRunner:
    def __init__(
        self,
        store: DueWorkStore,
        service: TicketService,
        queries: TicketQueries,
        catalog: WorkflowCatalog,
        directory: Directory,
        notifier: Notifier,
        clock: Clock,
        *,
        worker: str | None = None,
        batch: int = BATCH,
        lease: timedelta = LEASE,
    ) -> None:
        self._store = store
        self._service = service
        self._queries = queries
        self._catalog = catalog
        self._directory = directory
        self._notifier = notifier
        self._clock = clock
        self.worker = worker or default_worker()
        self._batch = batch
        self._lease = lease

    async def drain(self) -> int:
        """Passes until nothing is due (at most MAX_ROUNDS); how many rows were handled."""
        total = 0
        for _ in range(MAX_ROUNDS):
            handled = await self.run_once()
            total += handled
            if handled < self._batch:
                break
        return total

    async def drain_quietly(self) -> None:
        """`drain` for the scheduler (which wants no result)."""
        await self.drain()

    async def run_once(self) -> int:
        """Claim and do one batch of due work; how many rows were claimed."""
        items = await self._store.claim_due(self.worker, self._clock.now(), self._batch, self._lease)
        for item in items:
            try:
                await self._do(item)
            except Exception as exc:  # one row must not stop the others
                log.exception(
                    "due work failed",
                    extra={"ticket_id": item.ticket_id, "kind": item.kind, "due_work": item.id},
                )
                delay = min(RETRY_BASE * 2.0 ** min(item.attempts, 12), RETRY_MAX)
                retry_at = self._clock.now() + timedelta(seconds=delay)
                await self._store.retry_later(item.id, self.worker, f"{type(exc).__name__}: {exc}", retry_at)
        return len(items)

    # ------------------------------------------------------------------------------------------

    def _workflow(self, ticket: Ticket) -> Workflow | None:
        return self._catalog.get(ticket.workflow_id, ticket.workflow_version) or self._catalog.get(
            ticket.workflow_id
        )

    async def _skip(self, item: DueItem, reason: str) -> None:
        await self._store.mark_skipped(item.id, self.worker, reason, self._clock.now())
        log.info(
            "due work skipped",
            extra={"ticket_id": item.ticket_id, "kind": item.kind, "due_work": item.id, "why": reason},
        )

    async def _done(self, item: DueItem, **extra: object) -> None:
        await self._store.mark_done(item.id, self.worker, self._clock.now())
        log.info(
            "due work done",
            extra={"ticket_id": item.ticket_id, "kind": item.kind, "due_work": item.id, **extra},
        )

    async def _do(self, item: DueItem) -> None:
        ticket = await self._queries.get_ticket(item.ticket_id)
        wf = self._workflow(ticket) if ticket is not None else None
        if ticket is None or wf is None:
            await self._skip(item, "ticket or workflow not found")
            return
        if ticket.is_deleted or ticket.is_ended:
            await self._skip(item, "the ticket has ended")
            return
        if ticket.state_id != item.state_id or ticket.state_entered_at != item.state_entered_at:
            await self._skip(item, "the ticket has left the state")
            return
        state = wf.state(ticket.state_id)
        if state is None:
            await self._skip(item, "the ticket's state is not in its workflow")
            return
        if item.kind == TIMER:
            await self._timer(item)
        elif item.kind in (REMIND, URGE_KIND):
            await self._urge(item, ticket, wf, state)
        elif item.kind == ESCALATE_KIND:
            await self._escalate(item, ticket, wf, state)
        else:
            await self._store.mark_dead(
                item.id, self.worker, f"unknown kind {item.kind!r}", self._clock.now()
            )
            log.error("due work of an unknown kind", extra={"ticket_id": item.ticket_id, "kind": item.kind})

    async def _timer(self, item: DueItem) -> None:
        result = await self._service.execute(
            item.ticket_id, FireTimer(item.transition_id, item.state_entered_at)
        )
        if isinstance(result, Done):
            await self._done(item, transition_id=item.transition_id, to_state=result.ticket.state_id)
        elif isinstance(result, Rejected) and result.reason == Reason.STALE:
            await self._skip(item, f"timer refused: {result.message}")
        else:
            why = result.message if isinstance(result, Rejected) else str(result)
            await self._store.mark_dead(item.id, self.worker, f"timer refused: {why}", self._clock.now())
            log.warning(
                "timer refused by the engine; given up",
                extra={"ticket_id": item.ticket_id, "kind": item.kind, "due_work": item.id, "error": why},
            )

    def _waited(self, item: DueItem, ticket: Ticket, state: State) -> str:
        after = sla_after(state.sla, item.kind, item.step)
        if after is None:
            return human(self._clock.now() - item.state_entered_at)
        business = "（工作时间）" if state.sla is not None and state.sla.business_hours else ""
        return f"{human(after)}{business}"

    async def _plan(self, new: list[NewDelivery]) -> None:
        await self._notifier.store.commit_plan((), new, (), (), self._clock.now())
        self._notifier.kick()

    async def _urge(self, item: DueItem, ticket: Ticket, wf: Workflow, state: State) -> None:
        org = await self._directory.org()
        handlers = sorted(wanted_cards(ticket, wf, org))
        if not handlers:
            await self._skip(item, "nobody is waiting to decide")
            return
        waited = self._waited(item, ticket, state)
        if item.kind == REMIND:
            note = f"提醒：工单已在「{state.name}」等待 {waited}"
        else:
            note = f"催办：工单已在「{state.name}」等待超过 {waited}，请尽快处理"
        platforms = {name: sender.address_of for name, sender in self._notifier.senders.items()}
        new: list[NewDelivery] = []
        for username in handlers:
            new += addressed(
                ticket,
                org,
                username,
                platforms,
                kind=URGE,
                key=f"due{item.id}:{username}",
                actor=SYSTEM_USER,
                note=note,
            )
        if not new:
            await self._skip(item, "no handler can be reached on a chat platform")
            return
        await self._plan(new)
        await self._done(item, to=",".join(sorted({d.recipient for d in new})))

    async def _escalate(self, item: DueItem, ticket: Ticket, wf: Workflow, state: State) -> None:
        org = await self._directory.org()
        handlers = list(ticket.handlers)
        leaders = leaders_of(org, handlers)
        if not leaders:
            await self._skip(item, "the handlers have no department leader to tell")
            return
        names = "、".join(alias(org, h) for h in handlers[:3]) + (
            f" 等{len(handlers)}人" if len(handlers) > 3 else ""
        )
        note = f"升级：工单已在「{state.name}」等待超过 {self._waited(item, ticket, state)}，{names} 尚未处理"
        # through the engine: the leaders join the ticket's CC, so its link opens for them
        result = await self._service.execute(ticket.id, Escalate(item.state_entered_at, tuple(leaders)))
        if isinstance(result, Rejected) and result.reason == Reason.STALE:
            await self._skip(item, f"escalation refused: {result.message}")
            return
        if not isinstance(result, Done):
            why = result.message if isinstance(result, Rejected) else str(result)
            await self._store.mark_dead(item.id, self.worker, f"escalation refused: {why}", self._clock.now())
            log.warning(
                "escalation refused by the engine; given up",
                extra={"ticket_id": item.ticket_id, "kind": item.kind, "due_work": item.id, "error": why},
            )
            return
        ticket = result.ticket
        platforms = {name: sender.address_of for name, sender in self._notifier.senders.items()}
        new: list[NewDelivery] = []
        for username in leaders:
            new += addressed(
                ticket,
                org,
                username,
                platforms,
                kind=ESCALATE,
                key=f"due{item.id}:{username}",
                actor=SYSTEM_USER,
                note=note,
            )
        if new:
            await self._plan(new)
        await self._done(item, cc=",".join(leaders), to=",".join(sorted({d.recipient for d in new})) or "-")
