"""抄送 (CC) after creation: people copied on a ticket on their own (AddCc) or with the step a
person takes (the `cc` of Handle, Deliver, Close and Reopen).

Copied people join the ticket's `cc` and `relation` (so they may see it from then on) and are told
(CcNotified, for the state the ticket is in after the step). The flow-log entry of the step (or of
the AddCc) records them as ``extra["cc"]``. A person already copied, or the actor, is not copied
again; an unknown or inactive person refuses the whole command, which then changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from core import access
from core.commands import AddCc
from core.decision import Context, Decision, Outcome
from core.errors import Reason, Rejected
from core.events import CcNotified
from core.history import entry
from core.org import Org
from core.ticket import InterveneType, Ticket
from core.workflow import ParticipantType, State, Workflow

MAX_PEOPLE = 50  # people copied by one command


def can_copy(ticket: Ticket, wf: Workflow, org: Org, user: str) -> bool:
    """Who may copy people on a ticket: its creator, a current handler, anyone it involved other
    than as a copy (handled it, was asked to), or an intervener / admin; never on a deleted ticket."""
    if ticket.is_deleted or not org.active(user):
        return False
    return (
        user == ticket.creator
        or user in ticket.handlers
        or (user in ticket.relation and user not in ticket.cc)
        or access.can_intervene(wf, org, user)
    )


def _checked(people: Sequence[str], ctx: Context) -> Rejected | None:
    if len(people) > MAX_PEOPLE:
        return Rejected(Reason.INVALID, f"at most {MAX_PEOPLE} people can be copied at once")
    unknown = [p for p in dict.fromkeys(people) if not ctx.org.active(p)]
    if unknown:
        return Rejected(Reason.UNKNOWN_USER, f"cc: no active user {', '.join(repr(u) for u in unknown)}")
    return None


def _fresh(ticket: Ticket, actor: str, people: Sequence[str]) -> tuple[str, ...]:
    return tuple(p for p in dict.fromkeys(people) if p != actor and p not in ticket.cc)


def _copied(ticket: Ticket, people: tuple[str, ...], ctx: Context) -> Ticket:
    added = frozenset(people)
    return replace(ticket, cc=ticket.cc | added, relation=ticket.relation | added, updated_at=ctx.now)


def with_copies(decision: Decision, actor: str, people: Sequence[str], ctx: Context) -> Outcome:
    """`decision` (a step `actor` took) with `people` copied as well."""
    refused = _checked(people, ctx)
    if refused is not None:
        return refused
    fresh = _fresh(decision.ticket, actor, people)
    if not fresh:
        return decision
    ticket = _copied(decision.ticket, fresh, ctx)
    logs = decision.logs
    if logs:
        first = logs[0]
        earlier = first.extra.get("cc")
        named = [*(earlier if isinstance(earlier, list) else []), *fresh]
        logs = (replace(first, extra={**first.extra, "cc": named}), *logs[1:])
    return Decision(ticket, logs, (*decision.events, CcNotified(fresh, ticket.state_id)))


def add_cc(ticket: Ticket, wf: Workflow, state: State, cmd: AddCc, ctx: Context) -> Outcome:
    if ticket.is_deleted:
        return Rejected(Reason.NOT_FOUND, f"ticket {ticket.sn} has been deleted")
    if not can_copy(ticket, wf, ctx.org, cmd.actor):
        return Rejected(
            Reason.NO_PERMISSION,
            f"only the creator of ticket {ticket.sn}, someone it involves or an admin can copy people on it",
        )
    if not cmd.people:
        return Rejected(Reason.INVALID, "name at least one person to copy (抄送)")
    refused = _checked(cmd.people, ctx)
    if refused is not None:
        return refused
    fresh = _fresh(ticket, cmd.actor, cmd.people)
    if not fresh:
        return Rejected(Reason.INVALID, f"everyone named is already copied on ticket {ticket.sn}")
    log = entry(
        ticket,
        state.id,
        cmd.actor,
        InterveneType.CC,
        ctx,
        suggestion=cmd.suggestion,
        actor_type=ParticipantType.PERSON,
        extra={**cmd.extra, "cc": list(fresh)},
    )
    return Decision(_copied(ticket, fresh, ctx), (log,), (CcNotified(fresh, ticket.state_id),))
