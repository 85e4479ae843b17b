"""What the detail and the list both say about an order, computed from the ticket and its flow
log (oldest first):

- handler_id / handler_name: the people who may act now, comma-joined ("" once it has ended or
  while an automated step runs); handler_avatar: the first one's;
- last_handler: who acted last on the order itself (a transition, hand-over, consultation,
  accept, close, reopen, ...), not counting its creation, replies, ratings and copies;
- content: the note ({text, pic}) of the latest such step or of the creation ({"text": "",
  "pic": []} when there is none): replies, ratings and copies have their own flows;
- total_time: seconds from creation to when it ended (or to now while it is open);
- flow_handler: 1 when the viewer is in the flow: its creator, a current handler, or someone it
  involved other than as a copy (handled it, was asked to); else 0;
- reopen / deliver: whether it was ever reopened / handed over (转交).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from api.workorder.notes import note_of
from core.ticket import FlowLog, InterveneType, Ticket

NOT_STEPS = frozenset({InterveneType.COMMENT, InterveneType.EVALUATE, InterveneType.CC})
HANDLING = frozenset(
    {
        InterveneType.TRANSITION,
        InterveneType.DELIVER,
        InterveneType.ADD_NODE,
        InterveneType.ADD_NODE_END,
        InterveneType.ACCEPT,
        InterveneType.CLOSE,
        InterveneType.ALTER_STATE,
        InterveneType.HOOK,
        InterveneType.RETREAT,
        InterveneType.REOPEN,
        InterveneType.UPDATE_FIELDS,
    }
)


def last_handler(logs: Sequence[FlowLog]) -> str:
    for log in reversed(logs[1:]):
        if log.intervene_type in HANDLING:
            return log.actor
    return ""


def content(logs: Sequence[FlowLog]) -> dict[str, Any]:
    for log in reversed(logs):
        if log.intervene_type not in NOT_STEPS:
            note = note_of(log)
            return {"pic": note.pic, "text": note.text}
    return {"pic": [], "text": ""}


def ended_at(ticket: Ticket) -> datetime | None:
    if not ticket.is_ended:
        return None
    return ticket.state_entered_at or ticket.updated_at


def in_flow(ticket: Ticket, viewer: str) -> int:
    involved = (
        viewer == ticket.creator
        or viewer in ticket.handlers
        or (viewer in ticket.relation and viewer not in ticket.cc)
        or viewer in ticket.last_handlers.values()
    )
    return 1 if involved else 0


def ever(logs: Sequence[FlowLog], kind: InterveneType) -> bool:
    return any(log.intervene_type == kind for log in logs)
