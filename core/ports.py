"""Ports: what the engine's service needs from the outside world. Implemented in store/ and bot/."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from core.decision import Decision
from core.org import Org
from core.ticket import FlowLog, Ticket
from core.workflow import Workflow


class TicketTx(Protocol):
    """One database transaction. Leaving the context commits; an exception rolls back."""

    async def get(self, ticket_id: int) -> Ticket | None: ...

    async def children(self, parent_ticket_id: int, parent_state_id: int) -> Sequence[Ticket]: ...

    async def last_log(self, ticket_id: int) -> FlowLog | None: ...

    async def insert(self, decision: Decision, sn_prefix: str) -> Ticket:
        """Insert a new ticket (decision.ticket has id 0 and sn ""), assigning its id and a unique SN
        `{sn_prefix}_{YYYYMMDD}{NNNN}` (the date of decision.ticket.created_at); append the logs and
        write the events to the outbox. Returns the stored ticket (version 1)."""
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
