"""What decide() returns, and the read-only context it decides in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from core.calendar import BusinessCalendar
from core.errors import Rejected
from core.events import Event
from core.org import Org
from core.ticket import FlowLog, Ticket


@dataclass(frozen=True, slots=True)
class Context:
    """Everything decide() may consult besides the ticket and workflow. No clock, no I/O inside.

    - `external`: usernames from an external-lookup participant, by state id (the service fills it
      after decide() asked for it with NeedsLookup);
    - `seed`: chooses the person for random distribution (the service draws it);
    - `parent_fields`: the parent ticket's fields, for parent-field participants;
    - `children_ended`: for AdvanceParent, whether every sub-ticket of the parent state has ended;
    - `calendar`: the business hours SLAs with `business_hours` count in.
    """

    now: datetime
    org: Org
    external: Mapping[int, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    seed: int = 0
    parent_fields: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    children_ended: bool = False
    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)


@dataclass(frozen=True, slots=True)
class Decision:
    """The new ticket snapshot, the flow-log entries to append and the events to publish."""

    ticket: Ticket
    logs: tuple[FlowLog, ...] = ()
    events: tuple[Event, ...] = ()


@dataclass(frozen=True, slots=True)
class NeedsLookup:
    """decide() needs the people of an external-lookup state before it can decide."""

    state_id: int
    url: str

    def __bool__(self) -> bool:
        return False


Outcome = Decision | Rejected | NeedsLookup
