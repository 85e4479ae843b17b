"""Participant resolution (who handles a state) and distribution (who of them acts)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.decision import Context, NeedsLookup
from core.workflow import Distribute, Participant, ParticipantType, State, StateType, Variable, Workflow


@dataclass(frozen=True, slots=True)
class Resolved:
    type: ParticipantType
    people: tuple[str, ...]


def _split(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(dict.fromkeys(s for s in (str(i).strip() for i in items) if s))


def resolve(
    participant: Participant,
    *,
    state_id: int,
    creator: str,
    fields: Mapping[str, Any],
    ctx: Context,
) -> Resolved | NeedsLookup:
    """Who `participant` means for a ticket. Inactive and unknown users are dropped."""
    ptype, value, org = participant.type, participant.value, ctx.org
    people: tuple[str, ...]
    if ptype == ParticipantType.PERSON or ptype == ParticipantType.PEOPLE:
        people = _split(value)
    elif ptype == ParticipantType.DEPARTMENT:
        people = tuple(p for d in _split(value) if d.isdigit() for p in org.department_members(int(d)))
    elif ptype == ParticipantType.ROLE:
        people = tuple(p for r in _split(value) if r.isdigit() for p in org.role_members(int(r)))
    elif ptype == ParticipantType.VARIABLE:
        if value == Variable.CREATOR:
            people = (creator,)
        elif value == Variable.CREATOR_TL:
            people = (org.leader_of(creator),)
        else:
            people = ()
    elif ptype == ParticipantType.FIELD:
        people = _split(fields.get(value))
    elif ptype == ParticipantType.PARENT_FIELD:
        people = _split(ctx.parent_fields.get(value))
    elif ptype == ParticipantType.EXTERNAL:
        if state_id not in ctx.external:
            return NeedsLookup(state_id=state_id, url=value)
        people = ctx.external[state_id]
    else:  # NONE, HOOK (the hook acts, not a person), SCRIPT (refused at load time)
        return Resolved(ptype, ())
    return Resolved(ptype, tuple(dict.fromkeys(p for p in people if p and org.active(p))))


def fallback(workflow: Workflow, ctx: Context) -> tuple[str, ...]:
    """Who gets a ticket whose state resolves to nobody: the workflow admins, else the super admins.

    A ticket that waits for nobody would be stuck for ever; this keeps someone responsible."""
    admins = tuple(sorted(a for a in workflow.permissions.admins if ctx.org.active(a)))
    if admins:
        return admins
    return tuple(sorted(u for u in ctx.org.users if ctx.org.is_super_admin(u)))


def distribute(state: State, people: tuple[str, ...], seed: int) -> tuple[str, ...]:
    """Apply the state's distribution: random keeps one person (chosen by `seed`), others keep all."""
    if state.distribute == Distribute.RANDOM and len(people) > 1:
        ordered = sorted(people)
        return (ordered[seed % len(ordered)],)
    return people


def must_accept(state: State, participants: tuple[str, ...], accepted_by: str) -> bool:
    return state.distribute == Distribute.ACCEPT_FIRST and not accepted_by and len(participants) > 1


def start_participant(state: State) -> Participant:
    """A start state with no participant configured belongs to the creator."""
    if state.type == StateType.START and state.participant.type == ParticipantType.NONE:
        return Participant(ParticipantType.VARIABLE, Variable.CREATOR)
    return state.participant
