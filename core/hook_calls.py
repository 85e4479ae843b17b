"""Hook calls: the record of every POST to a hook (participant type hook) and its answer.

A hook call is written in the SAME transaction as the ticket change that enters the hook state
(store.tickets), so a committed change always has its call and a rolled-back one never does. Its life:

    "pending" --POST 2xx, wait=false, {"code": 0}--> "done"     (the ticket moves on)
              --POST 2xx, wait=true--------------> "waiting"  --hook_call_back--> "done" / "failed"
              --definite refusal ({"code": != 0}, 4xx)--> "failed" (HookFailed; retry_script)
              --transport error, 5xx, timeout--> "pending" again later (backoff) ... "dead"
    any open call --the ticket left the state / a newer call of the ticket--> "failed"

Claims: a worker takes due "pending" calls with `claim_due` (claimed_by, claimed_until = now + lease;
SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL), so several processes never call a hook twice; a
claim whose lease ran out (its worker died) is claimable again. A "waiting" call is claimed the
same way by the callback being applied (`claim_waiting`), so two callbacks cannot both apply.
The hook token is never stored: it is read from the workflow when the call is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.commands import HookResult
from core.errors import Reason, Rejected
from core.org import Org
from core.ports import TicketQueries
from core.service import Guard, Result, TicketService
from core.ticket import Ticket
from core.workflow import ParticipantType, Workflow

PENDING, WAITING, DONE, FAILED, DEAD = "pending", "waiting", "done", "failed", "dead"
OPEN = (PENDING, WAITING)
MAX_ATTEMPTS = 8  # failed attempts (transport errors, 5xx, timeouts) before a call is "dead"


@dataclass(frozen=True, slots=True)
class HookCall:
    """One row of ``hook_call``."""

    id: int
    ticket_id: int
    state_id: int
    ticket_version: int  # the version that entered the state and asked for the hook
    call_id: str  # random, url-safe; sent to the hook, which may echo it in its callback
    url: str
    wait: bool
    dedupe_key: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    response_status: int | None
    claimed_by: str
    claimed_until: datetime | None
    created_at: datetime
    called_at: datetime | None
    answered_at: datetime | None


class HookCalls(Protocol):
    """The hook calls' storage (store.hooks.SqlHookCalls). Every change but `claim_*` is applied
    only while `worker` holds the claim (claimed_by), and returns whether it was applied."""

    async def claim_due(self, worker: str, now: datetime, limit: int, lease: float) -> Sequence[HookCall]:
        """Up to `limit` "pending" calls due by `now` and not claimed (or whose claim expired),
        claimed by `worker` for `lease` seconds. Oldest due first."""
        ...

    async def claim_waiting(self, id: int, worker: str, now: datetime, lease: float) -> bool:
        """Claim the "waiting" call `id` (to apply its callback); False if it is not waiting or
        someone else holds an unexpired claim on it."""
        ...

    async def release(self, id: int, worker: str) -> bool:
        """Give up `worker`'s claim (the call keeps its status)."""
        ...

    async def mark_called(self, id: int, worker: str, now: datetime) -> bool:
        """The POST is about to be sent: called_at = now."""
        ...

    async def mark_waiting(self, id: int, worker: str, now: datetime, response_status: int) -> bool:
        """wait=true hook answered 2xx: "waiting" for its callback (claim released)."""
        ...

    async def mark_done(
        self, id: int, worker: str, now: datetime, *, response_status: int | None = None, note: str = ""
    ) -> bool:
        """Finished with success: "done", answered_at = now (claim released)."""
        ...

    async def mark_failed(
        self, id: int, worker: str, now: datetime, error: str, *, response_status: int | None = None
    ) -> bool:
        """Finished without success (a refusal, a failed callback, moot): "failed" (claim released)."""
        ...

    async def retry_later(
        self, id: int, worker: str, error: str, at: datetime, *, response_status: int | None = None
    ) -> str | None:
        """A failed attempt: attempts + 1, due again at `at` ("pending"), or "dead" once
        MAX_ATTEMPTS attempts failed. Returns the status afterwards (None if the claim was lost)."""
        ...

    async def mark_dead(self, id: int, worker: str, now: datetime, error: str) -> bool: ...

    async def waiting_for(self, ticket_id: int, state_id: int) -> HookCall | None:
        """The newest "waiting" call of the ticket in `state_id`, if any."""
        ...

    async def by_call_id(self, call_id: str) -> HookCall | None: ...

    async def for_ticket(self, ticket_id: int) -> Sequence[HookCall]:
        """Every call of the ticket, oldest first (a ledger)."""
        ...


def moot(ticket: Ticket | None, call: HookCall) -> str:
    """Why `call` no longer concerns its ticket ("" if it still does): the ticket is gone, ended
    or has left the call's state."""
    if ticket is None or ticket.is_deleted:
        return f"ticket {call.ticket_id} does not exist"
    if ticket.is_ended:
        return f"ticket {call.ticket_id} has ended"
    if ticket.state_id != call.state_id or ticket.participant_type != ParticipantType.HOOK:
        return f"ticket {call.ticket_id} has left state {call.state_id}"
    return ""


async def apply_hook_result(
    service: TicketService,
    queries: TicketQueries,
    calls: HookCalls,
    call: HookCall,
    worker: str,
    status: str,
    cmd: HookResult,
    *,
    guard: Guard | None = None,
    attempts: int = 4,
) -> Result:
    """Run `cmd` on the call's ticket, pinned to the call: it applies only while the ticket is still
    in the call's state AND the call is still `status` and claimed by `worker` (not superseded by a
    newer call, e.g. retry_script). The ticket is read before the call, and the command runs only on
    the ticket version read, so a call superseded in between (its ticket changes in the same
    transaction) is seen on the next round."""
    for _ in range(attempts):
        ticket = await queries.get_ticket(call.ticket_id)
        why = moot(ticket, call)
        if ticket is None or why:
            return Rejected(Reason.STALE, why)
        current = await calls.by_call_id(call.call_id)
        if current is None or current.status != status or current.claimed_by != worker:
            return Rejected(Reason.STALE, f"hook call {call.call_id} is no longer open")
        seen = ticket.version
        moved = False

        def pinned(found: Ticket, wf: Workflow, org: Org, seen: int = seen) -> Rejected | None:
            nonlocal moved
            if found.version != seen:
                moved = True
                return Rejected(Reason.STALE, f"ticket {found.id} changed")
            return guard(found, wf, org) if guard is not None else None

        result = await service.execute(call.ticket_id, cmd, guard=pinned)
        if not moved:
            return result
    return Rejected(Reason.STALE, f"ticket {call.ticket_id} is changing too fast; try again")
