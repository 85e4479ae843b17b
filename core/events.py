"""Domain events: what happened to a ticket (past tense). Written to the outbox with the change."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from core.workflow import Hook


@dataclass(frozen=True, slots=True)
class TicketCreated:
    actor: str
    workflow_id: int


@dataclass(frozen=True, slots=True)
class StateEntered:
    """The ticket now waits in `state_id` for `participants` (new cards go to them)."""

    state_id: int
    participants: tuple[str, ...]
    must_accept: bool = False


@dataclass(frozen=True, slots=True)
class TicketTransitioned:
    actor: str
    from_state_id: int
    to_state_id: int
    transition_id: int
    attribute: int


@dataclass(frozen=True, slots=True)
class VoteRecorded:
    actor: str
    transition_id: int
    remaining: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TicketAccepted:
    actor: str


@dataclass(frozen=True, slots=True)
class TicketDelivered:
    actor: str
    target: str


@dataclass(frozen=True, slots=True)
class NodeAdded:
    actor: str
    target: str


@dataclass(frozen=True, slots=True)
class NodeAddEnded:
    actor: str
    back_to: str


@dataclass(frozen=True, slots=True)
class TicketRetreated:
    actor: str


@dataclass(frozen=True, slots=True)
class TicketClosed:
    actor: str


@dataclass(frozen=True, slots=True)
class TicketReopened:
    actor: str
    to_state_id: int


@dataclass(frozen=True, slots=True)
class TicketEvaluated:
    actor: str
    point: int


@dataclass(frozen=True, slots=True)
class StateForced:
    actor: str
    from_state_id: int
    to_state_id: int


@dataclass(frozen=True, slots=True)
class CommentAdded:
    actor: str
    text: str


@dataclass(frozen=True, slots=True)
class FieldsUpdated:
    actor: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TicketDeleted:
    actor: str


@dataclass(frozen=True, slots=True)
class TicketEnded:
    """Reached an end state or was closed. `act_state` is 4 finished or 5 closed."""

    act_state: int
    parent_ticket_id: int
    parent_ticket_state_id: int


@dataclass(frozen=True, slots=True)
class HookRequested:
    state_id: int
    hook: Hook


@dataclass(frozen=True, slots=True)
class HookFailed:
    state_id: int
    msg: str


@dataclass(frozen=True, slots=True)
class TimerArmed:
    transition_id: int
    state_id: int
    due_at: datetime
    state_entered_at: datetime


@dataclass(frozen=True, slots=True)
class SlaArmed:
    """The ticket entered a state with an SLA: what is due when (None: not configured). `reminds`
    are the reminders in order (the first at remind_after, then every remind_every before the urge)."""

    state_id: int
    state_entered_at: datetime
    reminds: tuple[datetime, ...] = ()
    urge_at: datetime | None = None
    escalate_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Escalated:
    """An SLA ran out in `state_id`: `recipients` were added to the ticket's CC to be told."""

    state_id: int
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CcNotified:
    recipients: tuple[str, ...]
    state_id: int


Event = (
    TicketCreated
    | StateEntered
    | TicketTransitioned
    | VoteRecorded
    | TicketAccepted
    | TicketDelivered
    | NodeAdded
    | NodeAddEnded
    | TicketRetreated
    | TicketClosed
    | TicketReopened
    | TicketEvaluated
    | StateForced
    | CommentAdded
    | FieldsUpdated
    | TicketDeleted
    | TicketEnded
    | HookRequested
    | HookFailed
    | TimerArmed
    | SlaArmed
    | Escalated
    | CcNotified
)


def event_name(event: Event) -> str:
    return type(event).__name__


def event_payload(event: Event) -> dict[str, Any]:
    """A JSON-ready dict of the event (datetimes as ISO strings)."""
    out: dict[str, Any] = {}
    for key, value in asdict(event).items():
        out[key] = value.isoformat() if isinstance(value, datetime) else value
        if isinstance(value, tuple) and value and isinstance(value[0], datetime):
            out[key] = [v.isoformat() for v in value]
    if isinstance(event, HookRequested):  # never put the hook token into the outbox payload
        out["hook"] = {k: v for k, v in out["hook"].items() if k != "token"}
    return out
