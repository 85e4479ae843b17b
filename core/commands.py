"""Commands: what a person (or the system) asks the engine to do to a ticket. Verbs, frozen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any


def _frozen(m: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True, slots=True)
class Create:
    """Create a ticket. `request_key` names the request it answers (a chat message's platform and
    MsgId): a second create with the same key returns the ticket the first one made."""

    actor: str
    workflow_id: int
    transition_id: int
    fields: Mapping[str, Any] = field(default_factory=_frozen)
    title: str = ""
    suggestion: str = ""
    parent_ticket_id: int = 0
    parent_ticket_state_id: int = 0
    cc: tuple[str, ...] = ()  # 抄送: people the creator adds; they are told, read-only
    request_key: str = ""
    extra: Mapping[str, Any] = field(default_factory=_frozen)  # FlowLog.extra of the creating step
    # what a work order is about, (relation_type, relation_id), e.g. (1, a customer's external_userid):
    # kept in the ticket's own transaction, so an order is never stored without it
    relation: tuple[int, str] | None = None


@dataclass(frozen=True, slots=True)
class Handle:
    """Take a transition. `expected_state_id` (from a card or form) detects a stale click."""

    actor: str
    transition_id: int
    fields: Mapping[str, Any] = field(default_factory=_frozen)
    suggestion: str = ""
    expected_state_id: int | None = None
    extra: Mapping[str, Any] = field(default_factory=_frozen)  # FlowLog.extra
    cc: tuple[str, ...] = ()  # 抄送 with the step (core.copies)


@dataclass(frozen=True, slots=True)
class Accept:
    actor: str
    expected_state_id: int | None = None


@dataclass(frozen=True, slots=True)
class Deliver:
    actor: str
    target: str
    suggestion: str = ""
    from_admin: bool = False
    extra: Mapping[str, Any] = field(default_factory=_frozen)  # FlowLog.extra
    cc: tuple[str, ...] = ()  # 抄送 with the step (core.copies)


@dataclass(frozen=True, slots=True)
class AddNode:
    actor: str
    target: str
    suggestion: str = ""


@dataclass(frozen=True, slots=True)
class AddNodeEnd:
    actor: str
    suggestion: str = ""


@dataclass(frozen=True, slots=True)
class Retreat:
    actor: str
    suggestion: str = ""


@dataclass(frozen=True, slots=True)
class Close:
    actor: str
    suggestion: str = ""
    extra: Mapping[str, Any] = field(default_factory=_frozen)  # FlowLog.extra
    cc: tuple[str, ...] = ()  # 抄送 with the step (core.copies)


@dataclass(frozen=True, slots=True)
class ForceState:
    actor: str
    state_id: int
    suggestion: str = ""


@dataclass(frozen=True, slots=True)
class Comment:
    actor: str
    suggestion: str
    extra: Mapping[str, Any] = field(default_factory=_frozen)  # FlowLog.extra


@dataclass(frozen=True, slots=True)
class Reopen:
    """Open an ended ticket again (its creator or a workflow admin): it goes back to the
    workflow's `reopen_state` label, or else to the state the start state's first transition
    leads to."""

    actor: str
    suggestion: str = ""
    extra: Mapping[str, Any] = field(default_factory=_frozen)
    cc: tuple[str, ...] = ()  # 抄送 with the step (core.copies)


@dataclass(frozen=True, slots=True)
class Evaluate:
    """Rate an ended ticket (its creator): `point` 1-5 and an optional comment. A later rating
    replaces the earlier one."""

    actor: str
    point: int
    suggestion: str = ""
    extra: Mapping[str, Any] = field(default_factory=_frozen)


@dataclass(frozen=True, slots=True)
class AddCc:
    """Copy more people on a ticket (抄送): they are told and may see it from now on (core.copies)."""

    actor: str
    people: tuple[str, ...]
    suggestion: str = ""
    extra: Mapping[str, Any] = field(default_factory=_frozen)


@dataclass(frozen=True, slots=True)
class UpdateFields:
    actor: str
    fields: Mapping[str, Any]
    suggestion: str = ""


@dataclass(frozen=True, slots=True)
class Delete:
    actor: str
    suggestion: str = ""


@dataclass(frozen=True, slots=True)
class HookResult:
    """The outcome of a hook call: from `hook_call_back` (wait=true) or from the call itself (wait=false)."""

    actor: str
    result: bool
    msg: str = ""
    fields: Mapping[str, Any] = field(default_factory=_frozen)


@dataclass(frozen=True, slots=True)
class RetryHook:
    actor: str


@dataclass(frozen=True, slots=True)
class FireTimer:
    """A transition's timer is due. Fires only if the ticket is still where the timer was armed."""

    transition_id: int
    armed_state_entered_at: datetime


@dataclass(frozen=True, slots=True)
class Escalate:
    """A state's SLA ran out: `to` (the handlers' leaders) are told and may see the ticket from now
    on (added to its CC). Only if the ticket is still in the stay the SLA was armed for."""

    armed_state_entered_at: datetime
    to: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AdvanceParent:
    """Every sub-ticket of the parent's current state has ended: move the parent on."""

    child_ticket_id: int


Command = (
    Create
    | Handle
    | Accept
    | Deliver
    | AddNode
    | AddNodeEnd
    | Retreat
    | Close
    | ForceState
    | Comment
    | Reopen
    | Evaluate
    | AddCc
    | UpdateFields
    | Delete
    | HookResult
    | RetryHook
    | FireTimer
    | Escalate
    | AdvanceParent
)
