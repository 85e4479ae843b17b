"""The engine's error base class and the refusal reasons it reports."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CoreError(Exception):
    """Base class of every error raised by the engine."""


class WorkflowError(CoreError):
    """A workflow definition is invalid (raised while loading, never at run time)."""


class RequestTaken(CoreError):
    """TicketTx.insert: another transaction created a ticket for the same request key first."""


class Reason(StrEnum):
    """Why the engine refused a command. Stable strings, usable by API dialects and chat replies."""

    NOT_FOUND = "not_found"
    NOT_PARTICIPANT = "not_participant"
    NO_PERMISSION = "no_permission"
    BAD_TRANSITION = "bad_transition"
    BAD_STATE = "bad_state"
    BAD_FIELD = "bad_field"
    MISSING_FIELD = "missing_field"
    READ_ONLY_FIELD = "read_only_field"
    TICKET_ENDED = "ticket_ended"
    MUST_ACCEPT = "must_accept"
    IN_ADD_NODE = "in_add_node"
    ALREADY_VOTED = "already_voted"
    UNKNOWN_USER = "unknown_user"
    NO_PARTICIPANT = "no_participant"
    STALE = "stale"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Rejected:
    """decide() refused a command. `message` is a sentence a person can read."""

    reason: Reason
    message: str

    def __bool__(self) -> bool:  # a refusal is falsy so `if decision:` reads naturally
        return False
