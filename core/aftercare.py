"""After a ticket has ended: open it again (Reopen), or rate how it was handled (Evaluate)."""

from __future__ import annotations

from dataclasses import replace

from core import access
from core.commands import Evaluate, Reopen
from core.decision import Context, Decision, Outcome
from core.errors import Reason, Rejected
from core.events import TicketEvaluated, TicketReopened
from core.history import entry
from core.routing import enter_state
from core.ticket import ActState, InterveneType, Ticket
from core.workflow import ParticipantType, State, StateType, Workflow

POINTS = range(1, 6)
REOPEN_LABEL = "reopen_state"


def reopen_target(wf: Workflow) -> State | None:
    """Where a reopened ticket goes: the state named by the workflow's `reopen_state` label, or
    else the state the start state's first transition leads to."""
    named = wf.label.get(REOPEN_LABEL)
    if isinstance(named, int) and not isinstance(named, bool):
        state = wf.state(named)
        return state if state is not None and state.type == StateType.NORMAL else None
    start = wf.start_state()
    for t in wf.transitions_from(start.id):
        target = wf.state(t.destination_state_id)
        if target is not None and target.type == StateType.NORMAL:
            return target
    return None


def reopen(ticket: Ticket, wf: Workflow, state: State, cmd: Reopen, ctx: Context) -> Outcome:
    if not ticket.is_ended:
        return Rejected(
            Reason.BAD_STATE, f"ticket {ticket.sn} is still open; only an ended ticket can be reopened"
        )
    if not access.can_reopen(ticket, wf, ctx.org, cmd.actor):
        return Rejected(
            Reason.NO_PERMISSION,
            f"only the creator of ticket {ticket.sn} or an admin or intervener of '{wf.name}' can reopen it",
        )
    target = reopen_target(wf)
    if target is None:
        return Rejected(Reason.BAD_STATE, f"workflow '{wf.name}' has no state to reopen a ticket in")
    log = entry(
        ticket,
        state.id,
        cmd.actor,
        InterveneType.REOPEN,
        ctx,
        suggestion=cmd.suggestion,
        actor_type=ParticipantType.PERSON,
        extra=cmd.extra,
    )
    base = replace(ticket, relation=ticket.relation | {cmd.actor}, updated_at=ctx.now)
    entered = enter_state(base, wf, target, ctx, act_state=ActState.ONGOING)
    if not isinstance(entered, tuple):
        return entered
    new, events = entered
    return Decision(new, (log,), (TicketReopened(cmd.actor, target.id), *events))


def evaluate(ticket: Ticket, state: State, cmd: Evaluate, ctx: Context) -> Outcome:
    if not ticket.is_ended:
        return Rejected(Reason.BAD_STATE, f"ticket {ticket.sn} is still open; rate it once it has ended")
    if not access.can_evaluate(ticket, cmd.actor):
        return Rejected(Reason.NO_PERMISSION, f"only the creator of ticket {ticket.sn} can rate it")
    if isinstance(cmd.point, bool) or cmd.point not in POINTS:
        return Rejected(Reason.INVALID, f"a rating is a whole number from 1 to 5, not {cmd.point!r}")
    log = entry(
        ticket,
        state.id,
        cmd.actor,
        InterveneType.EVALUATE,
        ctx,
        suggestion=cmd.suggestion,
        actor_type=ParticipantType.PERSON,
        extra={**cmd.extra, "point": cmd.point},
    )
    return Decision(replace(ticket, updated_at=ctx.now), (log,), (TicketEvaluated(cmd.actor, cmd.point),))
