"""decide(): the pure heart of the engine. (ticket, workflow, command, context) -> outcome.

No await, no clock, no id generation, no I/O: everything comes in through the arguments.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from core import access
from core.commands import (
    Accept,
    AddNode,
    AddNodeEnd,
    AdvanceParent,
    Close,
    Command,
    Comment,
    Create,
    Delete,
    Deliver,
    FireTimer,
    ForceState,
    Handle,
    HookResult,
    Retreat,
    RetryHook,
    UpdateFields,
)
from core.decision import Context, Decision, NeedsLookup, Outcome
from core.errors import Reason, Rejected
from core.events import (
    CommentAdded,
    Event,
    FieldsUpdated,
    HookFailed,
    HookRequested,
    NodeAdded,
    NodeAddEnded,
    StateEntered,
    StateForced,
    TicketAccepted,
    TicketClosed,
    TicketCreated,
    TicketDeleted,
    TicketDelivered,
    TicketEnded,
    TicketRetreated,
    TicketTransitioned,
    VoteRecorded,
)
from core.fields import FieldValueError, coerce
from core.routing import destination, enter_state
from core.ticket import SYSTEM_USER, ActState, FlowLog, InterveneType, Ticket
from core.workflow import (
    Attribute,
    Distribute,
    FieldAccess,
    ParticipantType,
    RejectPolicy,
    State,
    StateType,
    Transition,
    Workflow,
)

_WRITABLE = (FieldAccess.REQUIRED, FieldAccess.OPTIONAL)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == ()


def _who(ticket: Ticket) -> str:
    return ", ".join(ticket.handlers) or "nobody"


def _log(
    ticket: Ticket,
    state_id: int,
    actor: str,
    itype: InterveneType,
    ctx: Context,
    *,
    suggestion: str = "",
    transition: Transition | None = None,
    actor_type: ParticipantType | None = None,
) -> FlowLog:
    return FlowLog(
        ticket_id=ticket.id,
        state_id=state_id,
        actor=actor,
        actor_type=ticket.participant_type if actor_type is None else actor_type,
        intervene_type=itype,
        created_at=ctx.now,
        transition_id=transition.id if transition else 0,
        transition_name=transition.name if transition else "",
        attribute=int(transition.attribute) if transition else 0,
        suggestion=suggestion,
        fields=dict(ticket.fields),
    )


def _apply_fields(
    ticket: Ticket,
    wf: Workflow,
    state: State,
    provided: Mapping[str, Any],
    ctx: Context,
    *,
    any_field: bool = False,
    check_required: bool = True,
) -> Ticket | Rejected:
    """Validate `provided` against the state's field permissions and merge it into the ticket."""
    fields = dict(ticket.fields)
    title = ticket.title
    for key, raw in provided.items():
        access_ = state.fields.get(key)
        writable = any_field or access_ in _WRITABLE
        if key == "title":
            writable = writable or ticket.id == 0  # the title is always settable when creating
            value: Any = str(raw).strip() if raw is not None else ""
            if len(value) > 500:
                return Rejected(Reason.BAD_FIELD, "the title is longer than 500 characters")
            if value != title and not writable:
                return Rejected(
                    Reason.READ_ONLY_FIELD, f"the title cannot be changed in state '{state.name}'"
                )
            title = value
            continue
        fdef = wf.field_def(key)
        if fdef is None:
            return Rejected(Reason.BAD_FIELD, f"unknown field '{key}' in workflow '{wf.name}'")
        try:
            value = coerce(fdef, raw, ctx.org)
        except FieldValueError as exc:
            return Rejected(Reason.BAD_FIELD, exc.message)
        if value == fields.get(key):
            continue  # clients often echo read-only values back unchanged: that is fine
        if not writable:
            return Rejected(
                Reason.READ_ONLY_FIELD, f"field '{fdef.name}' ({key}) is read-only in state '{state.name}'"
            )
        fields[key] = value
    if check_required:
        missing = []
        for key, access_ in state.fields.items():
            if access_ != FieldAccess.REQUIRED:
                continue
            value = title if key == "title" else fields.get(key)
            if _empty(value):
                fdef = wf.field_def(key)
                missing.append(f"'{fdef.name}' ({key})" if fdef else f"'{key}'")
        if missing:
            return Rejected(Reason.MISSING_FIELD, f"required in state '{state.name}': {', '.join(missing)}")
    return replace(ticket, fields=fields, title=title)


def _move(
    ticket: Ticket,
    wf: Workflow,
    transition: Transition,
    ctx: Context,
    actor: str,
    logs: tuple[FlowLog, ...],
    lead: tuple[Event, ...] = (),
) -> Outcome:
    """Take `transition` from the ticket's state: choose the destination and enter it."""
    dest = destination(wf, transition, ticket)
    if isinstance(dest, Rejected):
        return dest
    act_state = None
    if dest.type == StateType.START:
        act_state = ActState.REJECTED if transition.attribute == Attribute.REJECT else ActState.DRAFT
    entered = enter_state(ticket, wf, dest, ctx, act_state=act_state, via=transition)
    if not isinstance(entered, tuple):
        return entered
    new, events = entered
    moved = TicketTransitioned(actor, ticket.state_id, dest.id, transition.id, int(transition.attribute))
    return Decision(new, logs, (*lead, moved, *events))


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


def _state(ticket: Ticket, wf: Workflow) -> State | Rejected:
    state = wf.state(ticket.state_id)
    if state is None:
        return Rejected(
            Reason.BAD_STATE, f"ticket {ticket.sn} is in state {ticket.state_id}, unknown to its workflow"
        )
    return state


def _active(ticket: Ticket) -> Rejected | None:
    if ticket.is_deleted:
        return Rejected(Reason.NOT_FOUND, f"ticket {ticket.sn} has been deleted")
    if ticket.is_ended:
        word = "closed" if ticket.act_state == ActState.CLOSED else "finished"
        return Rejected(Reason.TICKET_ENDED, f"ticket {ticket.sn} is already {word}")
    return None


def _not_handler(ticket: Ticket, state: State, actor: str) -> Rejected:
    if ticket.in_add_node:
        return Rejected(
            Reason.IN_ADD_NODE,
            f"ticket {ticket.sn} is with {ticket.add_node_target} for consultation (加签); "
            f"it returns to {ticket.add_node_man} when they finish",
        )
    if access.needs_accept(ticket, state) and actor in ticket.participants:
        return Rejected(
            Reason.MUST_ACCEPT, f"accept ticket {ticket.sn} first (接单): several people may handle it"
        )
    if actor in ticket.votes:
        return Rejected(
            Reason.ALREADY_VOTED, f"you have already handled ticket {ticket.sn} in '{state.name}'"
        )
    if ticket.participant_type == ParticipantType.HOOK:
        return Rejected(Reason.NOT_PARTICIPANT, f"ticket {ticket.sn} is waiting for an automatic step (hook)")
    return Rejected(
        Reason.NOT_PARTICIPANT,
        f"you are not a current handler of ticket {ticket.sn}; it waits for {_who(ticket)} in '{state.name}'",
    )


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
        relation=frozenset({cmd.actor}),
        parent_ticket_id=cmd.parent_ticket_id,
        parent_ticket_state_id=cmd.parent_ticket_state_id,
        state_entered_at=ctx.now,
    )
    provided = dict(cmd.fields)
    if cmd.title:
        provided["title"] = cmd.title
    filled = _apply_fields(draft, wf, start, provided, ctx, check_required=t.field_require_check)
    if isinstance(filled, Rejected):
        return filled
    if not filled.title:
        filled = replace(filled, title=_render_title(wf, cmd.actor, filled.fields, ctx))
    filled = replace(filled, last_handlers={start.id: cmd.actor})
    log = _log(
        filled, start.id, cmd.actor, InterveneType.TRANSITION, ctx, suggestion=cmd.suggestion, transition=t
    )
    return _move(filled, wf, t, ctx, cmd.actor, (log,), (TicketCreated(cmd.actor, wf.id),))


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
        return _not_handler(ticket, state, cmd.actor)
    filled = _apply_fields(ticket, wf, state, cmd.fields, ctx, check_required=t.field_require_check)
    if isinstance(filled, Rejected):
        return filled
    filled = replace(
        filled,
        relation=filled.relation | {cmd.actor},
        last_handlers={**filled.last_handlers, state.id: cmd.actor},
        updated_at=ctx.now,
    )
    log = _log(
        filled, state.id, cmd.actor, InterveneType.TRANSITION, ctx, suggestion=cmd.suggestion, transition=t
    )
    if state.distribute == Distribute.ALL and len(ticket.participants) > 1:
        votes = {**ticket.votes, cmd.actor: t.id}
        chosen = _tally(state, wf, ticket, votes, t)
        if chosen is None:
            voted = replace(filled, votes=votes)
            return Decision(voted, (log,), (VoteRecorded(cmd.actor, t.id, voted.handlers),))
        return _move(filled, wf, chosen, ctx, cmd.actor, (log,))
    return _move(filled, wf, t, ctx, cmd.actor, (log,))


def _accept(ticket: Ticket, state: State, cmd: Accept, ctx: Context) -> Outcome:
    if cmd.expected_state_id is not None and cmd.expected_state_id != ticket.state_id:
        return Rejected(Reason.STALE, f"ticket {ticket.sn} has moved on to '{state.name}'")
    if not access.needs_accept(ticket, state):
        if ticket.accepted_by:
            return Rejected(Reason.STALE, f"ticket {ticket.sn} was already accepted by {ticket.accepted_by}")
        return Rejected(Reason.INVALID, f"ticket {ticket.sn} needs no accept in '{state.name}'")
    if cmd.actor not in ticket.participants:
        return _not_handler(ticket, state, cmd.actor)
    new = replace(
        ticket,
        participants=(cmd.actor,),
        participant_type=ParticipantType.PERSON,
        accepted_by=cmd.actor,
        updated_at=ctx.now,
    )
    log = _log(new, state.id, cmd.actor, InterveneType.ACCEPT, ctx, actor_type=ParticipantType.PERSON)
    return Decision(new, (log,), (TicketAccepted(cmd.actor), StateEntered(state.id, (cmd.actor,))))


def _deliver(ticket: Ticket, wf: Workflow, state: State, cmd: Deliver, ctx: Context) -> Outcome:
    if not ctx.org.active(cmd.target):
        return Rejected(Reason.UNKNOWN_USER, f"no active user '{cmd.target}' to deliver to")
    if ticket.participant_type == ParticipantType.HOOK:
        return Rejected(Reason.BAD_STATE, f"ticket {ticket.sn} is handled by an automatic step (hook)")
    if cmd.from_admin:
        if not access.can_intervene(wf, ctx.org, cmd.actor):
            return Rejected(
                Reason.NO_PERMISSION,
                f"a forced deliver needs admin or intervene permission on workflow '{wf.name}'",
            )
    elif not access.can_handle(ticket, state, cmd.actor):
        return _not_handler(ticket, state, cmd.actor)
    if state.distribute == Distribute.ALL and cmd.actor in ticket.participants and not cmd.from_admin:
        people = tuple(dict.fromkeys(cmd.target if p == cmd.actor else p for p in ticket.participants))
        new = replace(ticket, participants=people)
    else:
        new = replace(
            ticket,
            participants=(cmd.target,),
            participant_type=ParticipantType.PERSON,
            accepted_by="",
            votes={},
        )
    new = replace(new, relation=new.relation | {cmd.target, cmd.actor}, updated_at=ctx.now)
    log = _log(new, state.id, cmd.actor, InterveneType.DELIVER, ctx, suggestion=cmd.suggestion)
    events = (TicketDelivered(cmd.actor, cmd.target), StateEntered(state.id, (cmd.target,)))
    return Decision(new, (log,), events)


def _add_node(ticket: Ticket, state: State, cmd: AddNode, ctx: Context) -> Outcome:
    if not access.can_handle(ticket, state, cmd.actor):
        return _not_handler(ticket, state, cmd.actor)
    if not ctx.org.active(cmd.target):
        return Rejected(Reason.UNKNOWN_USER, f"no active user '{cmd.target}' to consult")
    if cmd.target == cmd.actor:
        return Rejected(Reason.INVALID, "you cannot consult yourself (加签)")
    new = replace(
        ticket,
        in_add_node=True,
        add_node_man=cmd.actor,
        add_node_target=cmd.target,
        relation=ticket.relation | {cmd.target},
        updated_at=ctx.now,
    )
    log = _log(new, state.id, cmd.actor, InterveneType.ADD_NODE, ctx, suggestion=cmd.suggestion)
    return Decision(new, (log,), (NodeAdded(cmd.actor, cmd.target), StateEntered(state.id, (cmd.target,))))


def _add_node_end(ticket: Ticket, state: State, cmd: AddNodeEnd, ctx: Context) -> Outcome:
    if not ticket.in_add_node:
        return Rejected(Reason.INVALID, f"ticket {ticket.sn} is not out for consultation (加签)")
    if cmd.actor != ticket.add_node_target:
        return Rejected(
            Reason.NOT_PARTICIPANT,
            f"only {ticket.add_node_target} can finish the consultation on ticket {ticket.sn}",
        )
    new = replace(ticket, in_add_node=False, add_node_target="", add_node_man="", updated_at=ctx.now)
    log = _log(
        ticket,
        state.id,
        cmd.actor,
        InterveneType.ADD_NODE_END,
        ctx,
        suggestion=cmd.suggestion,
        actor_type=ParticipantType.PERSON,
    )
    log = replace(log, fields=dict(new.fields))
    events = (NodeAddEnded(cmd.actor, ticket.add_node_man), StateEntered(state.id, new.handlers))
    return Decision(new, (log,), events)


def _retreat(ticket: Ticket, wf: Workflow, state: State, cmd: Retreat, ctx: Context) -> Outcome:
    if cmd.actor != ticket.creator:
        return Rejected(
            Reason.NO_PERMISSION, f"only the creator ({ticket.creator}) can withdraw ticket {ticket.sn}"
        )
    if not access.can_retreat(ticket, state, cmd.actor):
        return Rejected(Reason.BAD_STATE, f"ticket {ticket.sn} cannot be withdrawn in state '{state.name}'")
    log = _log(
        ticket,
        state.id,
        cmd.actor,
        InterveneType.RETREAT,
        ctx,
        suggestion=cmd.suggestion,
        actor_type=ParticipantType.VARIABLE,
    )
    entered = enter_state(ticket, wf, wf.start_state(), ctx, act_state=ActState.WITHDRAWN)
    if not isinstance(entered, tuple):
        return entered
    new, events = entered
    return Decision(new, (log,), (TicketRetreated(cmd.actor), *events))


def _close(ticket: Ticket, wf: Workflow, state: State, cmd: Close, ctx: Context) -> Outcome:
    if not access.can_close(ticket, wf, ctx.org, state, cmd.actor):
        return Rejected(
            Reason.NO_PERMISSION,
            f"only an admin of '{wf.name}', or the creator while the ticket is at its start state, "
            "can close it",
        )
    end = next(s for s in wf.states if s.type == StateType.END)
    new = replace(
        ticket,
        state_id=end.id,
        act_state=ActState.CLOSED,
        participants=(),
        participant_type=ParticipantType.NONE,
        in_add_node=False,
        add_node_man="",
        add_node_target="",
        votes={},
        accepted_by="",
        state_entered_at=ctx.now,
        updated_at=ctx.now,
    )
    log = _log(ticket, state.id, cmd.actor, InterveneType.CLOSE, ctx, suggestion=cmd.suggestion)
    ended = TicketEnded(int(ActState.CLOSED), ticket.parent_ticket_id, ticket.parent_ticket_state_id)
    return Decision(new, (log,), (TicketClosed(cmd.actor), ended))


def _force_state(ticket: Ticket, wf: Workflow, state: State, cmd: ForceState, ctx: Context) -> Outcome:
    if not access.can_intervene(wf, ctx.org, cmd.actor):
        return Rejected(
            Reason.NO_PERMISSION, f"changing the state needs admin or intervene permission on '{wf.name}'"
        )
    target = wf.state(cmd.state_id)
    if target is None:
        known = ", ".join(f"{s.id} ({s.name})" for s in wf.states)
        return Rejected(
            Reason.BAD_STATE, f"workflow '{wf.name}' has no state {cmd.state_id}; states: {known}"
        )
    log = _log(ticket, state.id, cmd.actor, InterveneType.ALTER_STATE, ctx, suggestion=cmd.suggestion)
    entered = enter_state(ticket, wf, target, ctx)
    if not isinstance(entered, tuple):
        return entered
    new, events = entered
    return Decision(new, (log,), (StateForced(cmd.actor, state.id, target.id), *events))


def _hook_result(ticket: Ticket, wf: Workflow, state: State, cmd: HookResult, ctx: Context) -> Outcome:
    if ticket.participant_type != ParticipantType.HOOK:
        return Rejected(Reason.BAD_STATE, f"ticket {ticket.sn} is not waiting for a hook in '{state.name}'")
    if not cmd.result:
        new = replace(ticket, script_run_last_result=False, updated_at=ctx.now)
        log = _log(new, state.id, cmd.actor, InterveneType.HOOK, ctx, suggestion=cmd.msg)
        return Decision(new, (log,), (HookFailed(state.id, cmd.msg),))
    filled = _apply_fields(ticket, wf, state, cmd.fields, ctx, check_required=False)
    if isinstance(filled, Rejected):
        return filled
    outgoing = wf.transitions_from(state.id)
    t = next((x for x in outgoing if x.attribute == Attribute.AGREE), outgoing[0] if outgoing else None)
    if t is None:
        return Rejected(Reason.BAD_STATE, f"state '{state.name}' has no transition to take after the hook")
    log = _log(filled, state.id, cmd.actor, InterveneType.HOOK, ctx, suggestion=cmd.msg, transition=t)
    return _move(replace(filled, updated_at=ctx.now), wf, t, ctx, cmd.actor, (log,))


def _retry_hook(ticket: Ticket, wf: Workflow, state: State, cmd: RetryHook, ctx: Context) -> Outcome:
    if ticket.participant_type != ParticipantType.HOOK or state.participant.hook is None:
        return Rejected(Reason.BAD_STATE, f"ticket {ticket.sn} has no hook to retry in '{state.name}'")
    if not (access.can_intervene(wf, ctx.org, cmd.actor) or cmd.actor == ticket.creator):
        return Rejected(Reason.NO_PERMISSION, "retrying a hook needs the creator or an admin / intervener")
    new = replace(ticket, script_run_last_result=True, updated_at=ctx.now)
    log = _log(new, state.id, cmd.actor, InterveneType.HOOK, ctx, suggestion="retry")
    return Decision(new, (log,), (HookRequested(state.id, state.participant.hook),))


def _system_move(
    ticket: Ticket, wf: Workflow, state: State, t: Transition, ctx: Context, note: str
) -> Outcome:
    log = _log(
        ticket,
        state.id,
        SYSTEM_USER,
        InterveneType.TRANSITION,
        ctx,
        suggestion=note,
        transition=t,
        actor_type=ParticipantType.NONE,
    )
    return _move(replace(ticket, updated_at=ctx.now), wf, t, ctx, SYSTEM_USER, (log,))


def _fire_timer(ticket: Ticket, wf: Workflow, state: State, cmd: FireTimer, ctx: Context) -> Outcome:
    t = wf.transition(cmd.transition_id)
    if t is None or t.source_state_id != state.id or ticket.state_entered_at != cmd.armed_state_entered_at:
        return Rejected(Reason.STALE, f"ticket {ticket.sn} has moved since the timer was set")
    return _system_move(ticket, wf, state, t, ctx, f"timer: {t.timer_seconds}s in '{state.name}'")


def _advance_parent(ticket: Ticket, wf: Workflow, state: State, cmd: AdvanceParent, ctx: Context) -> Outcome:
    if not ctx.children_ended:
        return Rejected(Reason.STALE, f"sub-tickets of {ticket.sn} in '{state.name}' are still open")
    outgoing = wf.transitions_from(state.id)
    t = next((x for x in outgoing if x.attribute == Attribute.AGREE), None)
    if t is None:
        return Rejected(Reason.BAD_STATE, f"state '{state.name}' has no agree transition for its sub-tickets")
    return _system_move(ticket, wf, state, t, ctx, f"all sub-tickets ended (last: #{cmd.child_ticket_id})")


def decide(ticket: Ticket | None, wf: Workflow, command: Command, ctx: Context) -> Outcome:
    """Decide what `command` does to `ticket` (None for Create). Pure and total: never raises on input."""
    if isinstance(command, Create):
        return _create(wf, command, ctx)
    if ticket is None:
        return Rejected(Reason.NOT_FOUND, "no such ticket")
    state = _state(ticket, wf)
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
        log = _log(
            ticket,
            state.id,
            command.actor,
            InterveneType.COMMENT,
            ctx,
            suggestion=command.suggestion,
            actor_type=ParticipantType.PERSON,
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
        log = _log(ticket, state.id, command.actor, InterveneType.DELETE, ctx, suggestion=command.suggestion)
        return Decision(new, (log,), (TicketDeleted(command.actor),))
    refused = _active(ticket)
    if refused is not None:
        return refused
    match command:
        case Handle():
            return _handle(ticket, wf, state, command, ctx)
        case Accept():
            return _accept(ticket, state, command, ctx)
        case Deliver():
            return _deliver(ticket, wf, state, command, ctx)
        case AddNode():
            return _add_node(ticket, state, command, ctx)
        case AddNodeEnd():
            return _add_node_end(ticket, state, command, ctx)
        case Retreat():
            return _retreat(ticket, wf, state, command, ctx)
        case Close():
            return _close(ticket, wf, state, command, ctx)
        case ForceState():
            return _force_state(ticket, wf, state, command, ctx)
        case UpdateFields():
            if not access.can_update_fields(ticket, wf, ctx.org, state, command.actor):
                return Rejected(Reason.NO_PERMISSION, f"you cannot edit the fields of ticket {ticket.sn} now")
            filled = _apply_fields(
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
            log = _log(
                filled,
                state.id,
                command.actor,
                InterveneType.UPDATE_FIELDS,
                ctx,
                suggestion=command.suggestion,
            )
            return Decision(filled, (log,), (FieldsUpdated(command.actor, tuple(sorted(command.fields))),))
        case HookResult():
            return _hook_result(ticket, wf, state, command, ctx)
        case RetryHook():
            return _retry_hook(ticket, wf, state, command, ctx)
        case FireTimer():
            return _fire_timer(ticket, wf, state, command, ctx)
        case AdvanceParent():
            return _advance_parent(ticket, wf, state, command, ctx)
    return Rejected(Reason.INVALID, f"unknown command {type(command).__name__}")


__all__ = ["NeedsLookup", "decide"]
