"""decide(): the pure heart of the engine. (ticket, workflow, command, context) -> outcome.

No await, no clock, no id generation, no I/O: everything comes in through the arguments.
The commands beside the normal flow live in core.interventions, the system's own in
core.automation.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from core import access
from core.aftercare import evaluate, reopen
from core.automation import advance_parent, escalate, fire_timer, hook_result, retry_hook
from core.commands import (
    Accept,
    AddCc,
    AddNode,
    AddNodeEnd,
    AdvanceParent,
    Close,
    Command,
    Comment,
    Create,
    Delete,
    Deliver,
    Escalate,
    Evaluate,
    FireTimer,
    ForceState,
    Handle,
    HookResult,
    Reopen,
    Retreat,
    RetryHook,
    UpdateFields,
)
from core.copies import add_cc, with_copies
from core.decision import Context, Decision, NeedsLookup, Outcome
from core.errors import Reason, Rejected
from core.events import (
    CcNotified,
    CommentAdded,
    Event,
    FieldsUpdated,
    TicketCreated,
    TicketDeleted,
    VoteRecorded,
)
from core.form import apply_fields
from core.history import entry
from core.interventions import accept, add_node, add_node_end, close, deliver, force_state, retreat
from core.refusals import active, not_handler
from core.refusals import state as current_state
from core.routing import move
from core.ticket import SYSTEM_USER, ActState, InterveneType, Ticket
from core.workflow import Attribute, Distribute, ParticipantType, RejectPolicy, State, Transition, Workflow


def _tally(
    state: State, wf: Workflow, ticket: Ticket, votes: Mapping[str, int], last: Transition
) -> Transition | None:
    """All-must-process: the transition that now wins, or None while votes are still due."""
    if state.reject_policy == RejectPolicy.FIRST_REJECT and last.attribute == Attribute.REJECT:
        return last
    if any(p not in votes for p in ticket.participants):
        return None
    order = list(votes.values())
    chosen: int
    if len(set(order)) == 1:
        chosen = order[0]
    else:
        rejects = [
            i for i in order if (t := wf.transition(i)) is not None and t.attribute == Attribute.REJECT
        ]
        if rejects:
            chosen = rejects[0]
        else:
            counts = Counter(order)
            chosen = max(counts, key=lambda i: (counts[i], -order.index(i)))
    return wf.transition(chosen) or last


def _render_title(wf: Workflow, creator: str, fields: Mapping[str, Any], ctx: Context) -> str:
    if not wf.title_template:
        user = ctx.org.user(creator)
        return f"{wf.name} - {user.alias if user and user.alias else creator}"

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key == "creator":
            user = ctx.org.user(creator)
            return user.alias if user and user.alias else creator
        value = fields.get(key)
        return "" if value is None else ",".join(map(str, value)) if isinstance(value, list) else str(value)

    return re.sub(r"\{(\w+)\}", sub, wf.title_template)[:500]


def _create(wf: Workflow, cmd: Create, ctx: Context) -> Outcome:
    if not ctx.org.active(cmd.actor):
        return Rejected(Reason.UNKNOWN_USER, f"no active user '{cmd.actor}'")
    start = wf.start_state()
    t = wf.transition(cmd.transition_id)
    if t is None or t.source_state_id != start.id:
        names = ", ".join(f"{x.id} ({x.name})" for x in wf.transitions_from(start.id))
        return Rejected(
            Reason.BAD_TRANSITION,
            f"transition {cmd.transition_id} does not start workflow '{wf.name}'; use one of: {names}",
        )
    if bool(cmd.parent_ticket_id) != bool(cmd.parent_ticket_state_id):
        return Rejected(Reason.INVALID, "parent_ticket_id and parent_ticket_state_id go together")
    cc = tuple(dict.fromkeys(u for u in cmd.cc if u != cmd.actor))
    unknown = [u for u in cc if not ctx.org.active(u)]
    if unknown:
        return Rejected(Reason.UNKNOWN_USER, f"cc: no active user {', '.join(repr(u) for u in unknown)}")
    defaults = {f.key: copy.deepcopy(f.default) for f in wf.fields if f.default is not None}
    draft = Ticket(
        id=0,
        sn="",
        title="",
        workflow_id=wf.id,
        workflow_version=wf.version,
        state_id=start.id,
        act_state=ActState.DRAFT,
        creator=cmd.actor,
        participant_type=ParticipantType.VARIABLE,
        participants=(cmd.actor,),
        created_at=ctx.now,
        updated_at=ctx.now,
        fields=defaults,
        relation=frozenset({cmd.actor, *cc}),
        cc=frozenset(cc),
        parent_ticket_id=cmd.parent_ticket_id,
        parent_ticket_state_id=cmd.parent_ticket_state_id,
        state_entered_at=ctx.now,
    )
    provided = dict(cmd.fields)
    if cmd.title:
        provided["title"] = cmd.title
    filled = apply_fields(draft, wf, start, provided, ctx, check_required=t.field_require_check)
    if isinstance(filled, Rejected):
        return filled
    if not filled.title:
        filled = replace(filled, title=_render_title(wf, cmd.actor, filled.fields, ctx))
    filled = replace(filled, last_handlers={start.id: cmd.actor})
    log = entry(
        filled,
        start.id,
        cmd.actor,
        InterveneType.TRANSITION,
        ctx,
        suggestion=cmd.suggestion,
        transition=t,
        extra=cmd.extra,
    )
    created: tuple[Event, ...] = (TicketCreated(cmd.actor, wf.id),)
    if cc:
        created += (CcNotified(cc, start.id),)
    return move(filled, wf, t, ctx, cmd.actor, (log,), created)


def _handle(ticket: Ticket, wf: Workflow, state: State, cmd: Handle, ctx: Context) -> Outcome:
    if cmd.expected_state_id is not None and cmd.expected_state_id != ticket.state_id:
        return Rejected(Reason.STALE, f"ticket {ticket.sn} has moved on to '{state.name}'")
    t = wf.transition(cmd.transition_id)
    if t is None or t.source_state_id != state.id:
        names = ", ".join(f"{x.id} ({x.name})" for x in wf.transitions_from(state.id)) or "none"
        return Rejected(
            Reason.BAD_TRANSITION,
            f"transition {cmd.transition_id} is not available in state '{state.name}'; available: {names}",
        )
    if not access.can_handle(ticket, state, cmd.actor):
        return not_handler(ticket, state, cmd.actor)
    filled = apply_fields(ticket, wf, state, cmd.fields, ctx, check_required=t.field_require_check)
    if isinstance(filled, Rejected):
        return filled
    filled = replace(
        filled,
        relation=filled.relation | {cmd.actor},
        last_handlers={**filled.last_handlers, state.id: cmd.actor},
        updated_at=ctx.now,
    )
    log = entry(
        filled,
        state.id,
        cmd.actor,
        InterveneType.TRANSITION,
        ctx,
        suggestion=cmd.suggestion,
        transition=t,
        extra=cmd.extra,
    )
    if state.distribute == Distribute.ALL and len(ticket.participants) > 1:
        votes = {**ticket.votes, cmd.actor: t.id}
        chosen = _tally(state, wf, ticket, votes, t)
        if chosen is None:
            voted = replace(filled, votes=votes)
            return Decision(voted, (log,), (VoteRecorded(cmd.actor, t.id, voted.handlers),))
        return move(filled, wf, chosen, ctx, cmd.actor, (log,))
    return move(filled, wf, t, ctx, cmd.actor, (log,))


def decide(ticket: Ticket | None, wf: Workflow, command: Command, ctx: Context) -> Outcome:
    """Decide what `command` does to `ticket` (None for Create). Pure and total: never raises on input.
    People a step copies (the `cc` of Handle, Deliver, Close, Reopen) are added by core.copies."""
    outcome = _decide(ticket, wf, command, ctx)
    if (
        isinstance(command, Handle | Deliver | Close | Reopen)
        and command.cc
        and isinstance(outcome, Decision)
    ):
        return with_copies(outcome, command.actor, command.cc, ctx)
    return outcome


def _decide(ticket: Ticket | None, wf: Workflow, command: Command, ctx: Context) -> Outcome:
    if isinstance(command, Create):
        return _create(wf, command, ctx)
    if ticket is None:
        return Rejected(Reason.NOT_FOUND, "no such ticket")
    state = current_state(ticket, wf)
    if isinstance(state, Rejected):
        return state
    actor = getattr(command, "actor", SYSTEM_USER)
    if actor != SYSTEM_USER and not ctx.org.active(actor) and not isinstance(command, HookResult):
        return Rejected(Reason.UNKNOWN_USER, f"no active user '{actor}'")
    if isinstance(command, Comment):
        if ticket.is_deleted or not access.can_view(ticket, wf, ctx.org, command.actor):
            return Rejected(Reason.NO_PERMISSION, f"you cannot see ticket {ticket.sn}")
        if not command.suggestion.strip():
            return Rejected(Reason.INVALID, "a comment needs some text")
        log = entry(
            ticket,
            state.id,
            command.actor,
            InterveneType.COMMENT,
            ctx,
            suggestion=command.suggestion,
            actor_type=ParticipantType.PERSON,
            extra=command.extra,
        )
        return Decision(
            replace(ticket, updated_at=ctx.now), (log,), (CommentAdded(command.actor, command.suggestion),)
        )
    if isinstance(command, Delete):
        if ticket.is_deleted:
            return Rejected(Reason.NOT_FOUND, f"ticket {ticket.sn} has been deleted")
        if not access.is_admin(wf, ctx.org, command.actor):
            return Rejected(Reason.NO_PERMISSION, f"only an admin of '{wf.name}' can delete tickets")
        new = replace(ticket, is_deleted=True, updated_at=ctx.now)
        log = entry(ticket, state.id, command.actor, InterveneType.DELETE, ctx, suggestion=command.suggestion)
        return Decision(new, (log,), (TicketDeleted(command.actor),))
    if isinstance(command, Reopen):
        return reopen(ticket, wf, state, command, ctx)
    if isinstance(command, Evaluate):
        return evaluate(ticket, state, command, ctx)
    if isinstance(command, AddCc):
        return add_cc(ticket, wf, state, command, ctx)
    refused = active(ticket)
    if refused is not None:
        return refused
    match command:
        case Handle():
            return _handle(ticket, wf, state, command, ctx)
        case Accept():
            return accept(ticket, state, command, ctx)
        case Deliver():
            return deliver(ticket, wf, state, command, ctx)
        case AddNode():
            return add_node(ticket, state, command, ctx)
        case AddNodeEnd():
            return add_node_end(ticket, state, command, ctx)
        case Retreat():
            return retreat(ticket, wf, state, command, ctx)
        case Close():
            return close(ticket, wf, state, command, ctx)
        case ForceState():
            return force_state(ticket, wf, state, command, ctx)
        case UpdateFields():
            if not access.can_update_fields(ticket, wf, ctx.org, state, command.actor):
                return Rejected(Reason.NO_PERMISSION, f"you cannot edit the fields of ticket {ticket.sn} now")
            filled = apply_fields(
                ticket,
                wf,
                state,
                command.fields,
                ctx,
                any_field=access.can_intervene(wf, ctx.org, command.actor),
                check_required=False,
            )
            if isinstance(filled, Rejected):
                return filled
            filled = replace(filled, updated_at=ctx.now)
            log = entry(
                filled,
                state.id,
                command.actor,
                InterveneType.UPDATE_FIELDS,
                ctx,
                suggestion=command.suggestion,
            )
            return Decision(filled, (log,), (FieldsUpdated(command.actor, tuple(sorted(command.fields))),))
        case HookResult():
            return hook_result(ticket, wf, state, command, ctx)
        case RetryHook():
            return retry_hook(ticket, wf, state, command, ctx)
        case FireTimer():
            return fire_timer(ticket, wf, state, command, ctx)
        case Escalate():
            return escalate(ticket, state, command, ctx)
        case AdvanceParent():
            return advance_parent(ticket, wf, state, command, ctx)
    return Rejected(Reason.INVALID, f"unknown command {type(command).__name__}")


__all__ = ["NeedsLookup", "decide"]
