"""What the system does on its own: hook results and retries, due timers, and the automatic
advance of a parent ticket when its sub-tickets have ended."""

from __future__ import annotations

from dataclasses import replace

from core import access
from core.commands import AdvanceParent, Escalate, FireTimer, HookResult, RetryHook
from core.decision import Context, Decision, Outcome
from core.errors import Reason, Rejected
from core.events import Escalated, HookFailed, HookRequested
from core.form import apply_fields
from core.history import entry
from core.routing import move
from core.ticket import SYSTEM_USER, InterveneType, Ticket
from core.workflow import Attribute, ParticipantType, State, Transition, Workflow


def hook_result(ticket: Ticket, wf: Workflow, state: State, cmd: HookResult, ctx: Context) -> Outcome:
    if ticket.participant_type != ParticipantType.HOOK:
        return Rejected(Reason.BAD_STATE, f"ticket {ticket.sn} is not waiting for a hook in '{state.name}'")
    if not cmd.result:
        new = replace(ticket, script_run_last_result=False, updated_at=ctx.now)
        log = entry(new, state.id, cmd.actor, InterveneType.HOOK, ctx, suggestion=cmd.msg)
        return Decision(new, (log,), (HookFailed(state.id, cmd.msg),))
    filled = apply_fields(ticket, wf, state, cmd.fields, ctx, check_required=False)
    if isinstance(filled, Rejected):
        return filled
    outgoing = wf.transitions_from(state.id)
    t = next((x for x in outgoing if x.attribute == Attribute.AGREE), outgoing[0] if outgoing else None)
    if t is None:
        return Rejected(Reason.BAD_STATE, f"state '{state.name}' has no transition to take after the hook")
    log = entry(filled, state.id, cmd.actor, InterveneType.HOOK, ctx, suggestion=cmd.msg, transition=t)
    return move(replace(filled, updated_at=ctx.now), wf, t, ctx, cmd.actor, (log,))


def retry_hook(ticket: Ticket, wf: Workflow, state: State, cmd: RetryHook, ctx: Context) -> Outcome:
    if ticket.participant_type != ParticipantType.HOOK or state.participant.hook is None:
        return Rejected(Reason.BAD_STATE, f"ticket {ticket.sn} has no hook to retry in '{state.name}'")
    if not (access.can_intervene(wf, ctx.org, cmd.actor) or cmd.actor == ticket.creator):
        return Rejected(Reason.NO_PERMISSION, "retrying a hook needs the creator or an admin / intervener")
    new = replace(ticket, script_run_last_result=True, updated_at=ctx.now)
    log = entry(new, state.id, cmd.actor, InterveneType.HOOK, ctx, suggestion="retry")
    return Decision(new, (log,), (HookRequested(state.id, state.participant.hook),))


def system_move(
    ticket: Ticket, wf: Workflow, state: State, t: Transition, ctx: Context, note: str
) -> Outcome:
    log = entry(
        ticket,
        state.id,
        SYSTEM_USER,
        InterveneType.TRANSITION,
        ctx,
        suggestion=note,
        transition=t,
        actor_type=ParticipantType.NONE,
    )
    return move(replace(ticket, updated_at=ctx.now), wf, t, ctx, SYSTEM_USER, (log,))


def fire_timer(ticket: Ticket, wf: Workflow, state: State, cmd: FireTimer, ctx: Context) -> Outcome:
    t = wf.transition(cmd.transition_id)
    if t is None or t.source_state_id != state.id or ticket.state_entered_at != cmd.armed_state_entered_at:
        return Rejected(Reason.STALE, f"ticket {ticket.sn} has moved since the timer was set")
    return system_move(ticket, wf, state, t, ctx, f"timer: {t.timer_seconds}s in '{state.name}'")


def escalate(ticket: Ticket, state: State, cmd: Escalate, ctx: Context) -> Outcome:
    if ticket.state_entered_at != cmd.armed_state_entered_at:
        return Rejected(Reason.STALE, f"ticket {ticket.sn} has moved since its SLA was set")
    people = tuple(u for u in dict.fromkeys(cmd.to) if ctx.org.active(u))
    if not people:
        return Rejected(Reason.INVALID, "an escalation needs an active person to tell")
    new = replace(
        ticket,
        cc=ticket.cc | frozenset(people),
        relation=ticket.relation | frozenset(people),
        updated_at=ctx.now,
    )
    return Decision(new, (), (Escalated(state.id, people),))


def advance_parent(ticket: Ticket, wf: Workflow, state: State, cmd: AdvanceParent, ctx: Context) -> Outcome:
    if not state.wait_subtickets:
        return Rejected(Reason.BAD_STATE, f"state '{state.name}' does not wait for sub-tickets")
    if not ctx.children_ended:
        return Rejected(Reason.STALE, f"sub-tickets of {ticket.sn} in '{state.name}' are still open")
    outgoing = wf.transitions_from(state.id)
    t = next((x for x in outgoing if x.attribute == Attribute.AGREE), None)
    if t is None:
        return Rejected(Reason.BAD_STATE, f"state '{state.name}' has no agree transition for its sub-tickets")
    return system_move(ticket, wf, state, t, ctx, f"all sub-tickets ended (last: #{cmd.child_ticket_id})")
