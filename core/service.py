"""The engine's service: load -> decide -> save in ONE transaction with an optimistic version check.

The only async code in core. A lost race re-reads and re-decides; if the action is then no longer
allowed, the caller learns who handled the ticket and when ("already handled by X at T").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from core.calendar import BusinessCalendar
from core.commands import (
    Accept,
    AddNode,
    AddNodeEnd,
    AdvanceParent,
    Command,
    Create,
    Deliver,
    Handle,
)
from core.decide import decide
from core.decision import Context, Decision, NeedsLookup
from core.errors import CoreError, Reason, Rejected, RequestTaken
from core.events import TicketDeleted, TicketEnded
from core.org import Org
from core.ports import Clock, Directory, ExternalLookup, TicketStore, TicketTx, WorkflowCatalog
from core.ticket import ActState, FlowLog, InterveneType, Ticket
from core.workflow import ParticipantType, Workflow

log = logging.getLogger("ticketbot.engine")

_HANDLER_COMMANDS = (Handle, Accept, AddNodeEnd, Deliver, AddNode)
_LATE = frozenset({Reason.STALE, Reason.NOT_PARTICIPANT, Reason.TICKET_ENDED, Reason.BAD_TRANSITION})
_VERBS = {
    InterveneType.ACCEPT: "accepted",
    InterveneType.DELIVER: "delivered",
    InterveneType.ADD_NODE: "sent for consultation",
    InterveneType.ADD_NODE_END: "consulted",
    InterveneType.CLOSE: "closed",
    InterveneType.ALTER_STATE: "moved",
    InterveneType.HOOK: "processed",
    InterveneType.RETREAT: "withdrawn",
}
MAX_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class Done:
    """The command took effect; `ticket` is the stored snapshot (with id, SN and new version)."""

    ticket: Ticket
    decision: Decision


@dataclass(frozen=True, slots=True)
class AlreadyHandled:
    """Someone (maybe the same person, clicking twice) got there first. Nothing was changed."""

    ticket: Ticket
    by: str
    at: datetime
    message: str

    def __bool__(self) -> bool:
        return False


Result = Done | Rejected | AlreadyHandled

Guard = Callable[[Ticket, Workflow, Org], "Rejected | None"]
"""A caller's own check, run on the loaded ticket inside the transaction before decide()
(e.g. an API app's workflow restriction and view permission), saving a separate read."""


class _Conflict(CoreError):
    """A second ticket touched in the same transaction changed under us: retry the whole unit."""


class TicketService:
    def __init__(
        self,
        store: TicketStore,
        catalog: WorkflowCatalog,
        directory: Directory,
        clock: Clock,
        *,
        external: ExternalLookup | None = None,
        rng: Callable[[], int] | None = None,
        sn_prefix: str = "loonflow",
        on_change: Callable[[int], None] | None = None,
        calendar: BusinessCalendar | None = None,
    ) -> None:
        """`on_change(ticket_id)` is called after each committed change (e.g. to wake the notifier);
        it must be quick and must not raise."""
        self._store = store
        self._catalog = catalog
        self._directory = directory
        self._clock = clock
        self._external = external
        self._rng = rng or (lambda: 0)
        self._sn_prefix = sn_prefix
        self._on_change = on_change
        self._calendar = calendar or BusinessCalendar()

    def _committed(self, result: Result) -> Result:
        if self._on_change is not None and isinstance(result, Done):
            self._on_change(result.ticket.id)
        return result

    async def create(self, cmd: Create, *, sn_prefix: str | None = None) -> Result:
        return self._committed(await self._create(cmd, sn_prefix=sn_prefix))

    async def _create(self, cmd: Create, *, sn_prefix: str | None) -> Result:
        wf = self._catalog.get(cmd.workflow_id)
        if wf is None:
            return Rejected(Reason.NOT_FOUND, f"no workflow {cmd.workflow_id}")
        for _ in range(MAX_ATTEMPTS):
            try:
                async with self._store.transaction() as tx:
                    if cmd.request_key and (earlier := await tx.created_for(cmd.request_key)) is not None:
                        log.info(
                            "ticket already created for this request",
                            extra={"ticket_id": earlier.id, "sn": earlier.sn, "request_key": cmd.request_key},
                        )
                        return Done(earlier, Decision(earlier))  # nothing new to publish
                    parent_fields = {}
                    if cmd.parent_ticket_id:
                        parent = await tx.get(cmd.parent_ticket_id)
                        if parent is None or parent.is_deleted:
                            return Rejected(Reason.NOT_FOUND, f"no parent ticket {cmd.parent_ticket_id}")
                        if parent.state_id != cmd.parent_ticket_state_id:
                            return Rejected(
                                Reason.INVALID,
                                f"parent ticket {parent.sn} is not in state {cmd.parent_ticket_state_id}",
                            )
                        parent_fields = dict(parent.fields)
                    ctx = await self._context(parent_fields=parent_fields)
                    outcome = await self._decide(None, wf, cmd, ctx)
                    if not isinstance(outcome, Decision):
                        return outcome
                    stored = await tx.insert(
                        outcome,
                        sn_prefix or self._sn_prefix,
                        request_key=cmd.request_key,
                        relation=cmd.relation,
                    )
                    await self._follow_up(tx, stored, outcome)
                    log.info(
                        "ticket created", extra={"ticket_id": stored.id, "sn": stored.sn, "actor": cmd.actor}
                    )
                    return Done(stored, outcome)
            except (_Conflict, RequestTaken):  # RequestTaken: the next round finds the ticket made
                continue
        return Rejected(Reason.STALE, "the ticket store is too busy right now; try again")

    async def execute(
        self, ticket_id: int, cmd: Command, *, guard: Guard | None = None, request_key: str = ""
    ) -> Result:
        """Run `cmd` on ticket `ticket_id`, retrying lost races by re-reading and re-deciding.

        `guard`, when given, may refuse the command on the loaded ticket before the engine runs.
        `request_key` (a chat message's platform and MsgId) is recorded with the change: the same
        key again changes nothing and answers Done with the ticket as it is now."""
        if isinstance(cmd, Create):
            return await self.create(cmd)
        return self._committed(await self._execute(ticket_id, cmd, guard, request_key))

    async def _execute(self, ticket_id: int, cmd: Command, guard: Guard | None, request_key: str) -> Result:
        for _ in range(MAX_ATTEMPTS):
            try:
                async with self._store.transaction() as tx:
                    if request_key and (earlier := await tx.created_for(request_key)) is not None:
                        log.info(
                            "request already carried out",
                            extra={"ticket_id": earlier.id, "request_key": request_key},
                        )
                        return Done(earlier, Decision(earlier))
                    ticket = await tx.get(ticket_id)
                    if ticket is None:
                        return Rejected(Reason.NOT_FOUND, f"ticket {ticket_id} does not exist")
                    wf = self._workflow(ticket)
                    if wf is None:
                        return Rejected(Reason.BAD_STATE, f"the workflow of ticket {ticket.sn} is not loaded")
                    ctx = await self._context_for(tx, ticket, cmd)
                    if guard is not None and (refused := guard(ticket, wf, ctx.org)) is not None:
                        return refused
                    outcome = await self._decide(ticket, wf, cmd, ctx)
                    if not isinstance(outcome, Decision):
                        if isinstance(outcome, Rejected):
                            late = await self._already_handled(tx, ticket, wf, cmd, outcome)
                            if late is not None:
                                return late
                        return outcome
                    if not await tx.update(outcome, ticket.version):
                        continue
                    if request_key:
                        await tx.record_request(
                            request_key, ticket.id, type(cmd).__name__, outcome.ticket.updated_at
                        )
                    stored = replace(outcome.ticket, version=ticket.version + 1)
                    await self._follow_up(tx, stored, outcome)
                    log.info(
                        "ticket changed",
                        extra={"ticket_id": ticket.id, "sn": ticket.sn, "command": type(cmd).__name__},
                    )
                    return Done(stored, outcome)
            except (_Conflict, RequestTaken):
                continue
        return Rejected(Reason.STALE, f"ticket {ticket_id} is changing too fast; try again")

    def _workflow(self, ticket: Ticket) -> Workflow | None:
        pinned = self._catalog.get(ticket.workflow_id, ticket.workflow_version)
        if pinned is None:
            log.warning(
                "pinned workflow version not loaded; using the current one",
                extra={
                    "ticket_id": ticket.id,
                    "workflow_id": ticket.workflow_id,
                    "version": ticket.workflow_version,
                },
            )
            return self._catalog.get(ticket.workflow_id)
        return pinned

    async def _context(self, **kw: object) -> Context:
        org = await self._directory.org()
        return Context(
            now=self._clock.now(),
            org=org,
            seed=self._rng(),
            calendar=self._calendar,
            **kw,  # type: ignore[arg-type]
        )

    async def _context_for(self, tx: TicketTx, ticket: Ticket, cmd: Command) -> Context:
        parent_fields = {}
        if ticket.parent_ticket_id:
            parent = await tx.get(ticket.parent_ticket_id)
            if parent is not None:
                parent_fields = dict(parent.fields)
        children_ended = False
        if isinstance(cmd, AdvanceParent):
            kids = await tx.children(ticket.id, ticket.state_id)
            children_ended = bool(kids) and all(k.is_ended for k in kids)
        return await self._context(parent_fields=parent_fields, children_ended=children_ended)

    async def _decide(
        self, ticket: Ticket | None, wf: Workflow, cmd: Command, ctx: Context
    ) -> Decision | Rejected:
        """decide(), answering its external-lookup questions (at most one per state)."""
        for _ in range(len(wf.states) + 1):
            outcome = decide(ticket, wf, cmd, ctx)
            if not isinstance(outcome, NeedsLookup):
                return outcome
            if self._external is None:
                return Rejected(Reason.NO_PARTICIPANT, "external participant lookup is not configured")
            probe = ticket or _probe(cmd, wf, ctx.now)
            try:
                people = await self._external.lookup(outcome.url, probe)
            except Exception as exc:  # any failure of the remote service is a clear refusal
                log.warning("external lookup failed", extra={"url": outcome.url, "error": str(exc)})
                return Rejected(Reason.NO_PARTICIPANT, f"the external participant lookup failed: {exc}")
            ctx = replace(ctx, external={**ctx.external, outcome.state_id: tuple(people)})
        return Rejected(Reason.NO_PARTICIPANT, "external participant lookup did not settle")

    async def _already_handled(
        self, tx: TicketTx, ticket: Ticket, wf: Workflow, cmd: Command, refused: Rejected
    ) -> AlreadyHandled | None:
        """A refusal that is really a late click: the ticket has left the state the click came from
        (a card's state, or the transition's source state), and the actor was involved in it."""
        if not isinstance(cmd, _HANDLER_COMMANDS) or refused.reason not in _LATE:
            return None
        origin = getattr(cmd, "expected_state_id", None)
        if origin is None and isinstance(cmd, Handle):
            t = wf.transition(cmd.transition_id)
            origin = t.source_state_id if t is not None else None
        if origin is None or origin == ticket.state_id or origin not in ticket.last_handlers:
            return None  # not a state the ticket went through and left
        if cmd.actor not in ticket.relation:
            return None  # a stranger learns nothing about who handled the ticket
        last: FlowLog | None = await tx.last_log(ticket.id)
        if last is None or last.intervene_type == InterveneType.COMMENT:
            return None
        verb = _VERBS.get(last.intervene_type) or (
            f"handled ({last.transition_name})" if last.transition_name else "handled"
        )
        who = "you" if last.actor == cmd.actor else last.actor
        when = last.created_at.strftime("%Y-%m-%d %H:%M:%S")
        return AlreadyHandled(
            ticket, last.actor, last.created_at, f"ticket {ticket.sn} was already {verb} by {who} at {when}"
        )

    async def _follow_up(self, tx: TicketTx, ticket: Ticket, decision: Decision) -> None:
        """Same-transaction consequences: a parent ticket advances when its last sub-ticket ends."""
        ended = any(isinstance(e, TicketEnded | TicketDeleted) for e in decision.events)
        if ended and ticket.parent_ticket_id:
            await self._advance_parent(tx, ticket)

    async def _advance_parent(self, tx: TicketTx, child: Ticket) -> None:
        # lock the parent first: two sub-tickets ending at once must not both see the other open
        parent = await tx.get(child.parent_ticket_id, for_update=True)
        if parent is None or parent.is_ended or parent.state_id != child.parent_ticket_state_id:
            return
        wf = self._workflow(parent)
        if wf is None:
            return
        cmd = AdvanceParent(child.id)
        ctx = await self._context_for(tx, parent, cmd)
        outcome = await self._decide(parent, wf, cmd, ctx)
        if not isinstance(outcome, Decision):
            return
        if not await tx.update(outcome, parent.version):
            raise _Conflict(f"parent ticket {parent.id} changed concurrently")
        log.info("parent ticket advanced", extra={"ticket_id": parent.id, "child_ticket_id": child.id})
        await self._follow_up(tx, replace(outcome.ticket, version=parent.version + 1), outcome)


def _probe(cmd: Command, wf: Workflow, now: datetime) -> Ticket:
    """A stand-in ticket for an external lookup during create (the ticket has no id yet)."""
    fields = dict(getattr(cmd, "fields", {}))
    return Ticket(
        0,
        "",
        getattr(cmd, "title", ""),
        wf.id,
        wf.version,
        wf.start_state().id,
        ActState.DRAFT,
        getattr(cmd, "actor", ""),
        ParticipantType.NONE,
        (),
        now,
        now,
        fields=fields,
    )
