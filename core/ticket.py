"""A ticket as the engine sees it: an immutable snapshot, and the flow-log entries it accumulates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from types import MappingProxyType
from typing import Any

from core.workflow import ParticipantType

SYSTEM_USER = "system"  # the actor of timers, hooks and automatic parent advances


class ActState(IntEnum):
    DRAFT = 0
    ONGOING = 1
    REJECTED = 2
    WITHDRAWN = 3
    FINISHED = 4
    CLOSED = 5


ENDED = frozenset({ActState.FINISHED, ActState.CLOSED})


class InterveneType(IntEnum):
    TRANSITION = 0
    DELIVER = 1
    ADD_NODE = 2
    ADD_NODE_END = 3
    ACCEPT = 4
    COMMENT = 5
    DELETE = 6
    CLOSE = 7
    ALTER_STATE = 8
    HOOK = 9
    RETREAT = 10
    UPDATE_FIELDS = 11  # ticketbot extension: field edits are logged too
    REOPEN = 12  # ticketbot extension: an ended ticket opened again (core.aftercare)
    EVALUATE = 13  # ticketbot extension: the creator rated an ended ticket (core.aftercare)
    CC = 14  # ticketbot extension: people copied on the ticket after its creation (core.copies)


def _frozen(m: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True, slots=True)
class Ticket:
    """The state of one ticket. `version` is the optimistic-concurrency counter kept by the store.

    `participants` are the usernames who may act now (empty for hook / none states);
    `participant_type` is the type they resolved from (loonflow's participant_type_id);
    `accepted_by` is set once someone accepted in an accept-first state;
    `votes` holds username -> transition id in an all-must-process state;
    `relation` is everyone ever involved (creator, handlers, add-node targets, CC).
    """

    id: int
    sn: str
    title: str
    workflow_id: int
    workflow_version: str
    state_id: int
    act_state: ActState
    creator: str
    participant_type: ParticipantType
    participants: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    fields: Mapping[str, Any] = field(default_factory=_frozen)
    accepted_by: str = ""
    in_add_node: bool = False
    add_node_man: str = ""  # who asked for the add-node (gets the ticket back afterwards)
    add_node_target: str = ""
    votes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    relation: frozenset[str] = frozenset()
    cc: frozenset[str] = frozenset()
    parent_ticket_id: int = 0
    parent_ticket_state_id: int = 0
    script_run_last_result: bool = True
    state_entered_at: datetime | None = None
    last_handlers: Mapping[int, str] = field(
        default_factory=lambda: MappingProxyType({})
    )  # state id -> who last acted
    is_deleted: bool = False
    version: int = 0

    @property
    def is_ended(self) -> bool:
        return self.act_state in ENDED or self.is_deleted

    @property
    def handlers(self) -> tuple[str, ...]:
        """Who may act on the ticket now: the add-node target while consulting, else the
        participants who have not voted yet (votes only exist in all-must-process states)."""
        if self.is_ended:
            return ()
        if self.in_add_node:
            return (self.add_node_target,)
        return tuple(p for p in self.participants if p not in self.votes)


@dataclass(frozen=True, slots=True)
class FlowLog:
    """One entry of a ticket's history. `fields` is a snapshot of the ticket's fields after the step."""

    ticket_id: int
    state_id: int  # the state the action was taken in
    actor: str
    actor_type: ParticipantType
    intervene_type: InterveneType
    created_at: datetime
    transition_id: int = 0
    transition_name: str = ""
    attribute: int = 0
    suggestion: str = ""
    fields: Mapping[str, Any] = field(default_factory=_frozen)
    id: int = 0
    # what a dialect attached to the step, JSON-ready: the work-order API's pictures (`pic`),
    # attachments (`attached`), `is_show` (visible to the customer) and a rating's `point`
    extra: Mapping[str, Any] = field(default_factory=_frozen)
