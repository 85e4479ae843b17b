"""The refusals shared by many commands, each saying why in words a person can act on."""

from __future__ import annotations

from core import access
from core.errors import Reason, Rejected
from core.ticket import ActState, Ticket
from core.workflow import ParticipantType, State, Workflow


def who(ticket: Ticket) -> str:
    return ", ".join(ticket.handlers) or "nobody"


def state(ticket: Ticket, wf: Workflow) -> State | Rejected:
    state = wf.state(ticket.state_id)
    if state is None:
        return Rejected(
            Reason.BAD_STATE, f"ticket {ticket.sn} is in state {ticket.state_id}, unknown to its workflow"
        )
    return state


def active(ticket: Ticket) -> Rejected | None:
    if ticket.is_deleted:
        return Rejected(Reason.NOT_FOUND, f"ticket {ticket.sn} has been deleted")
    if ticket.is_ended:
        word = "closed" if ticket.act_state == ActState.CLOSED else "finished"
        return Rejected(Reason.TICKET_ENDED, f"ticket {ticket.sn} is already {word}")
    return None


def not_handler(ticket: Ticket, state: State, actor: str) -> Rejected:
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
        f"you are not a current handler of ticket {ticket.sn}; it waits for {who(ticket)} in '{state.name}'",
    )
