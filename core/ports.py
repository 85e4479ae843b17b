"""Ports: what the engine's service needs from the outside world. Implemented in store/ and bot/."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.decision import Decision
from core.org import Org
from core.ticket import FlowLog, Ticket
from core.workflow import Workflow


class TicketTx(Protocol):
    """One database transaction. Leaving the context commits; an exception rolls back."""

    async def get(self, ticket_id: int, *, for_update: bool = False) -> Ticket | None:
        """The ticket (deleted ones too). `for_update` locks its row until the transaction ends
        (SELECT ... FOR UPDATE where the database has row locks; SQLite serialises writers anyway)."""
        ...

    async def children(self, parent_ticket_id: int, parent_state_id: int) -> Sequence[Ticket]: ...

    async def last_log(self, ticket_id: int) -> FlowLog | None: ...

    async def created_for(self, request_key: str) -> Ticket | None:
        """The ticket `request_key` created or changed earlier (insert / record_request), if any."""
        ...

    async def record_request(self, request_key: str, ticket_id: int, command: str, at: datetime) -> None:
        """Record that `request_key` changed ticket `ticket_id` with `command` (a class name); raises
        core.errors.RequestTaken if another transaction recorded it first (then roll back)."""
        ...

    async def insert(
        self,
        decision: Decision,
        sn_prefix: str,
        *,
        request_key: str = "",
        relation: tuple[int, str] | None = None,
    ) -> Ticket:
        """Insert a new ticket (decision.ticket has id 0 and sn ""), assigning its id and a unique SN
        `{sn_prefix}_{YYYYMMDD}{NNNN}` (the date of decision.ticket.created_at); append the logs and
        write the events to the outbox. Returns the stored ticket (version 1). With a
        `request_key`, records it with the ticket; raises core.errors.RequestTaken if another
        transaction recorded it first (this one must then roll back). With a `relation`
        (relation_type, relation_id), records what the work order is about."""
        ...

    async def update(self, decision: Decision, expected_version: int) -> bool:
        """Save decision.ticket only if the stored version is still `expected_version` (then bump
        it), appending logs and writing events to the outbox. False if someone else won the race."""
        ...


class TicketStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[TicketTx]: ...


class Directory(Protocol):
    async def org(self) -> Org: ...


class WorkflowCatalog(Protocol):
    def get(self, workflow_id: int, version: str | None = None) -> Workflow | None:
        """The workflow at `version` (a ticket's pinned version), or the current one when None."""
        ...

    def all(self) -> Sequence[Workflow]: ...


class ExternalLookup(Protocol):
    async def lookup(self, url: str, ticket: Ticket) -> tuple[str, ...]: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class TicketQueries(Protocol):
    """The read side the HTTP dialects need: lists, one ticket, its flow log. No locking."""

    async def list_tickets(
        self,
        *,
        username: str,
        category: str = "all",
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
    ) -> tuple[list[Ticket], int]: ...

    async def get_ticket(self, ticket_id: int) -> Ticket | None: ...

    async def flow_logs(self, ticket_id: int, desc: bool = True) -> list[FlowLog]: ...

    async def ticket_for_request(self, request_key: str) -> Ticket | None:
        """The ticket a create with this `request_key` made (core.commands.Create), if any."""
        ...


class NonceStore(Protocol):
    """Remembers API request nonces for the replay window; `add` is False for a nonce seen before."""

    async def add(self, app: str, nonce: str, expires_at: datetime) -> bool: ...


@dataclass(frozen=True, slots=True)
class UrgeOutcome:
    """What came of an urge (催办). `reason` when not `ok`: "not_found" (or not visible to the
    urger), "ended", "no_handlers", "unreachable" (no handler can be reached on a chat platform),
    "too_soon" (this ticket was urged a moment ago), "too_many" (the urger's hourly budget is
    spent). `retry_after` seconds go with the last two."""

    ok: bool
    reason: str = ""
    message: str = ""
    reached: tuple[str, ...] = ()
    retry_after: int = 0


class Urger(Protocol):
    """Sends an urge card to a ticket's current handlers, throttled per ticket and per urger."""

    async def urge(self, ticket_id: int, actor: str, note: str = "") -> UrgeOutcome: ...
