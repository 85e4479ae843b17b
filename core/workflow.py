"""Workflow definitions: states, transitions, custom fields, participants (the loonflow classic model).

A workflow is data. Definitions are frozen; the config loader builds and validates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any

from core.conditions import Expression


def _frozen(m: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(m or {}))


class StateType(IntEnum):
    NORMAL = 0
    START = 1
    END = 2


class ParticipantType(IntEnum):
    NONE = 0
    PERSON = 1
    PEOPLE = 2
    DEPARTMENT = 3
    ROLE = 4
    VARIABLE = 5
    SCRIPT = 6  # loonflow runs server-side Python here; ticketbot refuses it (use a hook)
    FIELD = 7
    PARENT_FIELD = 8
    HOOK = 10
    EXTERNAL = 11


PARTICIPANT_TYPE_NAMES: Mapping[int, str] = MappingProxyType(
    {
        0: "无处理人",
        1: "个人",
        2: "多人",
        3: "部门",
        4: "角色",
        5: "变量",
        6: "脚本",
        7: "工单字段",
        8: "父工单字段",
        10: "hook",
        11: "外部获取",
    }
)


class Variable(StrEnum):
    CREATOR = "creator"
    CREATOR_TL = "creator_tl"


class Distribute(IntEnum):
    ACCEPT_FIRST = 1
    DIRECT = 2
    RANDOM = 3
    ALL = 4


class RejectPolicy(StrEnum):
    """How an all-must-process state ends when people disagree; no policy lets a ticket get stuck.

    - FIRST_REJECT: the first person to choose a reject transition decides at once (the default).
    - AFTER_ALL: wait for everyone; unanimous choice wins, else the first reject chosen, else the
      transition with most votes (ties: the one chosen first).
    """

    FIRST_REJECT = "first_reject"
    AFTER_ALL = "after_all"


class Attribute(IntEnum):
    AGREE = 1
    REJECT = 2
    OTHER = 3


class FieldAccess(IntEnum):
    READ_ONLY = 1
    REQUIRED = 2
    OPTIONAL = 3


class FieldType(IntEnum):
    STRING = 5
    INT = 10
    FLOAT = 15
    BOOL = 20
    DATE = 25
    DATETIME = 30
    RADIO = 35
    CHECKBOX = 40
    SELECT = 45
    MULTI_SELECT = 50
    TEXTAREA = 55
    RICH_TEXT = 58
    USER = 60
    MULTI_USER = 70
    ATTACHMENT = 80


CHOICE_TYPES = frozenset({FieldType.RADIO, FieldType.CHECKBOX, FieldType.SELECT, FieldType.MULTI_SELECT})
MULTI_TYPES = frozenset({FieldType.CHECKBOX, FieldType.MULTI_SELECT, FieldType.MULTI_USER})


@dataclass(frozen=True, slots=True)
class CustomField:
    key: str
    name: str
    type: FieldType
    order_id: int = 0
    default: Any = None
    description: str = ""
    placeholder: str = ""
    choices: Mapping[str, str] = field(default_factory=_frozen)  # value -> label
    boolean_display: Mapping[str, str] = field(default_factory=_frozen)  # "0"/"1" -> label
    label: Mapping[str, Any] = field(default_factory=_frozen)


@dataclass(frozen=True, slots=True)
class Hook:
    url: str
    token: str = field(repr=False)
    wait: bool = False
    extra_info: str = ""


@dataclass(frozen=True, slots=True)
class Participant:
    """Who handles a state. `value` depends on the type: a username, comma-separated usernames,
    a department id, a role id, a Variable, a field key, a hook, or an external lookup URL."""

    type: ParticipantType = ParticipantType.NONE
    value: str = ""
    hook: Hook | None = None


@dataclass(frozen=True, slots=True)
class Sla:
    """Service levels of a state, counted from when a ticket enters it: remind the handlers after
    `remind_after` (again every `remind_every`, if set, until the urge), urge them after
    `urge_after`, tell their department leaders after `escalate_after`. With `business_hours` the
    durations count business time (the deployment's core.calendar.BusinessCalendar)."""

    remind_after: timedelta | None = None
    urge_after: timedelta | None = None
    escalate_after: timedelta | None = None
    business_hours: bool = False
    remind_every: timedelta | None = None


@dataclass(frozen=True, slots=True)
class State:
    id: int
    name: str
    type: StateType = StateType.NORMAL
    order_id: int = 0
    is_hidden: bool = False
    enable_retreat: bool = False
    remember_last_man: bool = False
    participant: Participant = field(default_factory=Participant)
    distribute: Distribute = Distribute.DIRECT
    reject_policy: RejectPolicy = RejectPolicy.FIRST_REJECT
    fields: Mapping[str, FieldAccess] = field(default_factory=_frozen)
    cc: tuple[Participant, ...] = ()
    label: Mapping[str, Any] = field(default_factory=_frozen)
    wait_subtickets: bool = False  # moves on by itself (agree) once all its sub-tickets have ended
    sla: Sla | None = None  # reminders, urges and escalation while a ticket waits here


@dataclass(frozen=True, slots=True)
class Condition:
    """One branch of a transition: the first expression that holds picks its target state."""

    expression: Expression
    target_state_id: int


@dataclass(frozen=True, slots=True)
class Transition:
    id: int
    name: str
    source_state_id: int
    destination_state_id: int
    attribute: Attribute = Attribute.AGREE
    conditions: tuple[Condition, ...] = ()
    timer_seconds: int = 0
    field_require_check: bool = True
    alert_enable: bool = False
    alert_text: str = ""
    cc: tuple[Participant, ...] = ()


@dataclass(frozen=True, slots=True)
class Permissions:
    """Per-workflow grants (usernames). Super admins (org user type 2) have all of them."""

    admins: frozenset[str] = frozenset()
    interveners: frozenset[str] = frozenset()
    viewers: frozenset[str] = frozenset()
    api_apps: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Workflow:
    id: int
    name: str
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    fields: tuple[CustomField, ...] = ()
    description: str = ""
    version: str = "1"
    title_template: str = ""
    view_permission_check: bool = True
    permissions: Permissions = field(default_factory=Permissions)
    display_fields: tuple[str, ...] = ()  # key fields shown on cards and lists
    label: Mapping[str, Any] = field(default_factory=_frozen)

    def state(self, state_id: int) -> State | None:
        for s in self.states:
            if s.id == state_id:
                return s
        return None

    def start_state(self) -> State:
        for s in self.states:
            if s.type == StateType.START:
                return s
        raise LookupError(f"workflow {self.id} has no start state")

    def transition(self, transition_id: int) -> Transition | None:
        for t in self.transitions:
            if t.id == transition_id:
                return t
        return None

    def transitions_from(self, state_id: int) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions if t.source_state_id == state_id)

    def field_def(self, key: str) -> CustomField | None:
        for f in self.fields:
            if f.key == key:
                return f
        return None
