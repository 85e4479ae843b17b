"""Flow-log entries as decide() writes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.decision import Context
from core.ticket import FlowLog, InterveneType, Ticket
from core.workflow import ParticipantType, Transition


def entry(
    ticket: Ticket,
    state_id: int,
    actor: str,
    itype: InterveneType,
    ctx: Context,
    *,
    suggestion: str = "",
    transition: Transition | None = None,
    actor_type: ParticipantType | None = None,
    extra: Mapping[str, Any] | None = None,
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
        extra=dict(extra or {}),
    )
