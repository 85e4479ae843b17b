"""Workflow definitions from ``<config_dir>/workflows/*.yaml`` into `core.workflow.Workflow` objects.

One file holds one workflow. Enumerations accept a name or the loonflow integer id. Schema
(``?`` = optional, defaults in brackets; the full reference with examples is workflows/README.md)::

    id: 1                          # int >= 1, stable, unique across files (the API exposes it)
    name: 请假申请
    description?: ...
    title_template?: "{creator} 请假 {days} 天"   # placeholders: {creator} and field keys
    view_permission_check?: true   # [true] only related users see ticket details
    display_fields?: [days]        # field keys (or title / creator) shown on cards and lists
    permissions?: {admins: [..], interveners: [..], viewers: [..], api_apps: [..]}  # usernames / app names
    label?: {}                     # free mapping, passed through
    fields?:
      - key: days                  # identifier (letters, digits, _), unique; referenced as {days}
        name: 请假天数
        type: int                  # string 5 | int 10 | float 15 | bool 20 | date 25 | datetime 30 |
                                   # radio 35 | checkbox 40 | select 45 | multi_select 50 | textarea 55 |
                                   # rich_text 58 | user 60 | multi_user 70 | attachment 80
        order_id?: 10              # [position in the list]
        default?: 1                # validated with core.fields.coerce
        description?: ...
        placeholder?: ...
        choices?: {annual: 年假}    # value -> label; required for radio/checkbox/select/multi_select
        boolean_display?: {"0": 否, "1": 是}   # bool fields only
        label?: {}
    states:
      - id: 101                    # int >= 1, unique across ALL workflows
        name: 部门领导审批
        type?: normal              # start 1 | normal 0 | end 2    [normal]
        order_id?: 2               # [position in the list]
        is_hidden?: false
        enable_retreat?: false     # the creator may withdraw while the ticket is here
        wait_subtickets?: false    # moves on by itself (first agree transition) once every
                                   # sub-ticket created from this state has ended
        remember_last_man?: false
        participant?: {type: variable, value: creator_tl}     # [none]
        distribute?: direct        # accept_first 1 | direct 2 | random 3 | all 4   [direct]
        reject_policy?: first_reject   # first_reject | after_all; only with distribute: all
        fields?: {days: read_only}     # field key (or title) -> read_only 1 | required 2 | optional 3
        cc?: [participant, ...]    # who gets a CC notice when a ticket arrives here
        sla?: {remind_after: 4h, remind_every: 4h, urge_after: 1d, escalate_after: 2d,
               business_hours: true}   # durations 30m / 4h / 2d; business hours: calendar.yaml
        label?: {}
    transitions:
      - id: 151                    # int >= 1, unique across ALL workflows
        name: 同意
        from: 102                  # state id
        to: 104                    # state id; the target when no condition matches
        attribute?: agree          # agree 1 | reject 2 | other 3   [agree]
        conditions?: [{expression: "{days} > 3", to: 103}]   # first match wins
        timer?: 2h                 # fire automatically after: seconds or "30m" / "2h" / "1d" / "1h30m"
        field_require_check?: true
        alert_enable?: false       # ask for confirmation; needs alert_text
        alert_text?: ...
        cc?: [participant, ...]    # who gets a CC notice when this transition is taken

    participant:  {type: ..., value: ..., hook: ...}
      none 0            no value
      person 1          value: a username
      people 2          value: [usernames] or "a,b"
      department 3      value: a department id or a list of ids
      role 4            value: a role id or a list of ids
      variable 5        value: creator | creator_tl
      script 6          refused: script participants run server-side code; use a hook instead
      field 7           value: a declared field key (the ticket field holds usernames)
      parent_field 8    value: a field key of the parent ticket
      hook 10           hook: {url: http(s)://..., token: literal or "${ENV_NAME}", wait: false,
                               extra_info: ""}
      external 11       value: an http(s) URL that answers with usernames
    (cc participants: person, people, department, role, variable, field or parent_field.)

Checks (all errors are collected; each names the file, a path in it and what is wrong): YAML syntax,
required and unknown keys (with suggestions), types, duplicate ids (workflow ids across files; state
and transition ids within a workflow and across all workflows), exactly one start state, at least one
end state, transitions' from/to/condition targets exist, end states have no outgoing transitions,
every other state has one, every state is reachable from the start and can reach an end, state
field keys are declared (or title), conditions compile (known names: field keys, title, creator),
participants exist in the org, hook url/token given (``${ENV}`` resolved at load time), choices for
choice fields, defaults valid. ``Workflow.version`` is the first 12 hex digits of the file's sha256.
"""

from __future__ import annotations

import os
import re
import string
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from config._schema import (
    Node,
    Problems,
    freeze,
    join,
    kind,
    listing,
    parse_duration,
    pick,
    read_yaml,
    resolve_env,
    suggest,
)
from config.calendar import read_sla
from config.errors import ConfigError
from core.conditions import ConditionError, compile_expression
from core.fields import FieldValueError, coerce
from core.org import Org
from core.workflow import (
    CHOICE_TYPES,
    Attribute,
    Condition,
    CustomField,
    Distribute,
    FieldAccess,
    FieldType,
    Hook,
    Participant,
    ParticipantType,
    Permissions,
    RejectPolicy,
    State,
    StateType,
    Transition,
    Variable,
    Workflow,
)

WORKFLOWS_DIR = "workflows"

FIELD_TYPES: Mapping[str, FieldType] = {
    "string": FieldType.STRING,
    "int": FieldType.INT,
    "float": FieldType.FLOAT,
    "bool": FieldType.BOOL,
    "date": FieldType.DATE,
    "datetime": FieldType.DATETIME,
    "radio": FieldType.RADIO,
    "checkbox": FieldType.CHECKBOX,
    "select": FieldType.SELECT,
    "multi_select": FieldType.MULTI_SELECT,
    "textarea": FieldType.TEXTAREA,
    "rich_text": FieldType.RICH_TEXT,
    "user": FieldType.USER,
    "multi_user": FieldType.MULTI_USER,
    "attachment": FieldType.ATTACHMENT,
}
STATE_TYPES: Mapping[str, StateType] = {
    "start": StateType.START,
    "normal": StateType.NORMAL,
    "end": StateType.END,
}
PARTICIPANT_TYPES: Mapping[str, ParticipantType] = {
    "none": ParticipantType.NONE,
    "person": ParticipantType.PERSON,
    "people": ParticipantType.PEOPLE,
    "department": ParticipantType.DEPARTMENT,
    "role": ParticipantType.ROLE,
    "variable": ParticipantType.VARIABLE,
    "script": ParticipantType.SCRIPT,
    "field": ParticipantType.FIELD,
    "parent_field": ParticipantType.PARENT_FIELD,
    "hook": ParticipantType.HOOK,
    "external": ParticipantType.EXTERNAL,
}
DISTRIBUTES: Mapping[str, Distribute] = {
    "accept_first": Distribute.ACCEPT_FIRST,
    "direct": Distribute.DIRECT,
    "random": Distribute.RANDOM,
    "all": Distribute.ALL,
}
REJECT_POLICIES: Mapping[str, RejectPolicy] = {p.value: p for p in RejectPolicy}
ATTRIBUTES: Mapping[str, Attribute] = {
    "agree": Attribute.AGREE,
    "reject": Attribute.REJECT,
    "other": Attribute.OTHER,
}
FIELD_ACCESS: Mapping[str, FieldAccess] = {
    "read_only": FieldAccess.READ_ONLY,
    "required": FieldAccess.REQUIRED,
    "optional": FieldAccess.OPTIONAL,
}

BUILTIN_STATE_FIELDS = frozenset({"title"})  # ticket attributes a state may grant access to
BUILTIN_NAMES = frozenset({"title", "creator"})  # names conditions and display_fields may use
TITLE_NAMES = frozenset({"creator"})  # placeholders of title_template besides the field keys


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Custom field keys that would clash with ticket attributes in loonflow's ticket payloads.
RESERVED_FIELD_KEYS = frozenset(
    _words(
        "id sn title creator workflow_id state_id parent_ticket_id parent_ticket_state_id participant "
        "participant_type_id relation act_state_id is_end is_rejected is_deleted in_add_node add_node_man "
        "multi_all_person script_run_last_result gmt_created gmt_modified"
    )
)
FIELD_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
CC_TYPES = frozenset(
    PARTICIPANT_TYPES[n] for n in _words("person people department role variable field parent_field")
)
PERSON_FIELD_TYPES = (FieldType.USER, FieldType.MULTI_USER, FieldType.STRING)  # fields a participant may name
SCRIPT_REFUSED = "script participants run server-side code; use a hook instead"

_WORKFLOW_KEYS = _words(
    "id name description title_template view_permission_check display_fields permissions label "
    "fields states transitions"
)
_PERMISSION_KEYS = _words("admins interveners viewers api_apps")
_FIELD_KEYS = _words("key name type order_id default description placeholder choices boolean_display label")
_STATE_KEYS = _words(
    "id name type order_id is_hidden enable_retreat remember_last_man participant distribute "
    "reject_policy fields cc label wait_subtickets sla"
)
_TRANSITION_KEYS = _words(
    "id name from to attribute conditions timer field_require_check alert_enable alert_text cc"
)
_PARTICIPANT_KEYS = ("type", "value", "hook")
_HOOK_KEYS = ("url", "token", "wait", "extra_info")
_CONDITION_KEYS = ("expression", "to")
_URL_RE = re.compile(r"https?://[^\s/]+\S*\Z")


# --- public API -------------------------------------------------------------------------------------


def load_workflows(
    config_dir: Path, org: Org | None, *, env: Mapping[str, str] | None = None
) -> tuple[Workflow, ...]:
    """Every ``<config_dir>/workflows/*.yaml``, sorted by workflow id.

    `org` is the directory participants are checked against (None skips those checks); `env`
    resolves ``${NAME}`` secrets (default: os.environ). Raises ConfigError with every located error.
    """
    found = read_workflows(config_dir, org, env=env)
    if found.errors:
        raise ConfigError(found.errors)
    return found.workflows


def load_workflow_file(path: Path, org: Org | None, *, env: Mapping[str, str] | None = None) -> Workflow:
    """One workflow file; raises ConfigError with every located error."""
    parsed = _parse_file(path, org, os.environ if env is None else env)
    if parsed.errors or parsed.workflow is None:
        raise ConfigError(parsed.errors or [f"{path.name}: invalid workflow"])
    return parsed.workflow


def load_workflow_source(
    name: str, source: str, org: Org | None, *, env: Mapping[str, str] | None = None
) -> Workflow:
    """A workflow from YAML text kept elsewhere (a version a ticket pinned, stored in the database).
    Raises ConfigError like load_workflow_file; `name` stands for the file name in messages."""
    with tempfile.TemporaryDirectory(prefix="ticketbot-wf-") as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(source.encode("utf-8"))
        return load_workflow_file(path, org, env=env)


@dataclass(frozen=True, slots=True)
class WorkflowsRead:
    """What `read_workflows` found: the valid workflows, every error, and every declared workflow id
    (also of invalid files, so that references to them do not produce follow-up errors)."""

    workflows: tuple[Workflow, ...]
    errors: list[str]
    declared_ids: frozenset[int]
    files: Mapping[int, str]  # workflow id -> the file name it was read from


def read_workflows(
    config_dir: Path, org: Org | None, *, env: Mapping[str, str] | None = None
) -> WorkflowsRead:
    """Read every workflow file without raising; the loader merges the errors of all files."""
    environ = os.environ if env is None else env
    folder = config_dir / WORKFLOWS_DIR
    if not folder.is_dir():
        return WorkflowsRead((), [f"{WORKFLOWS_DIR}/: directory not found in {config_dir}"], frozenset(), {})
    errors: list[str] = []
    parsed: list[_Parsed] = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".yml":
            errors.append(f"{path.name}: workflow files must end in .yaml (this file is ignored)")
        elif path.suffix == ".yaml" and path.is_file():
            result = _parse_file(path, org, environ)
            errors.extend(result.errors)
            parsed.append(result)
    errors.extend(_check_across(parsed))
    workflows = sorted((p.workflow for p in parsed if p.workflow is not None), key=lambda w: w.id)
    files = {p.workflow_id: p.file for p in reversed(parsed) if p.workflow_id is not None}
    return WorkflowsRead(tuple(workflows), errors, frozenset(files), files)


# --- one file ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Parsed:
    file: str
    workflow: Workflow | None
    errors: list[str]
    workflow_id: int | None
    state_ids: list[tuple[int, str]]  # (id, path)
    transition_ids: list[tuple[int, str]]


def _parse_file(path: Path, org: Org | None, env: Mapping[str, str]) -> _Parsed:
    problems = Problems(path.name)
    result = _Parsed(path.name, None, problems.errors, None, [], [])
    doc = read_yaml(path, problems)
    if doc is None:
        return result
    if doc.data is None:
        problems.add("", "the file is empty")
        return result
    root = Node.of(problems, "", doc.data, _WORKFLOW_KEYS, required=("id", "name", "states", "transitions"))
    if root is None:
        return result
    reader = _Reader(problems, org, env)
    result.workflow_id = root.optional_int("id", minimum=1)
    fields = reader.fields(root)
    field_keys = frozenset(f.key for _, f in fields)
    states = reader.states(root, field_keys)
    transitions = reader.transitions(root, field_keys)
    result.state_ids = [(s.id, join("states", i)) for i, s in states]
    result.transition_ids = [(t.id, join("transitions", i)) for i, t in transitions]
    _check_graph(problems, states, transitions, complete=not reader.graph_incomplete)
    workflow = Workflow(
        id=result.workflow_id or 0,
        name=root.string("name", nonempty=True),
        states=tuple(s for _, s in states),
        transitions=tuple(t for _, t in transitions),
        fields=reader.defaults(fields),
        description=root.string("description"),
        version=doc.digest[:12],
        title_template=_title_template(root, field_keys),
        view_permission_check=root.boolean("view_permission_check", True),
        permissions=reader.permissions(root),
        display_fields=_display_fields(root, field_keys),
        label=freeze(root.mapping("label")),
    )
    if not problems:
        result.workflow = workflow
    return result


class _Reader:
    """Reads the parts of one workflow file, reporting into `problems`.

    Getters report a wrong value and carry on with a default; a file with any problem yields no
    workflow, so the defaults only serve to find the remaining problems."""

    def __init__(self, problems: Problems, org: Org | None, env: Mapping[str, str]) -> None:
        self.problems = problems
        self.org = org
        self.env = env
        self.field_types: dict[str, FieldType] = {}
        # Set when a state, a state type, a transition or a condition could not be read: the graph
        # checks that depend on the whole graph (reachability, ...) are then skipped, as they would
        # only repeat the problem in other words.
        self.graph_incomplete = False

    def items(
        self, root: Node, key: str, keys: tuple[str, ...], required: tuple[str, ...]
    ) -> list[tuple[int, Node]]:
        out: list[tuple[int, Node]] = []
        for i, item in enumerate(root.seq(key)):
            node = Node.of(self.problems, join(key, i), item, keys, required)
            if node is not None:
                out.append((i, node))
            elif key in ("states", "transitions"):
                self.graph_incomplete = True
        return out

    # fields ---------------------------------------------------------------------------------------

    def fields(self, root: Node) -> list[tuple[int, CustomField]]:
        out: list[tuple[int, CustomField]] = []
        seen: dict[str, int] = {}
        for i, node in self.items(root, "fields", _FIELD_KEYS, ("key", "name", "type")):
            key = node.string("key", nonempty=True)
            if not key:
                continue
            if not FIELD_KEY_RE.match(key):
                node.error(
                    "key", f"'{key}' is not a valid field key (letters, digits and '_', not first a digit)"
                )
                continue
            if key in RESERVED_FIELD_KEYS:
                node.error("key", f"'{key}' is reserved for a ticket attribute; choose another key")
                continue
            if key in seen:
                node.error("key", f"duplicate field key '{key}' (also fields[{seen[key]}])")
                continue
            seen[key] = i
            ftype = pick(
                self.problems, node.at("type"), node.raw("type"), FIELD_TYPES, "field type", required=False
            )
            if ftype is not None:
                self.field_types[key] = ftype
            out.append(
                (
                    i,
                    CustomField(
                        key=key,
                        name=node.string("name", nonempty=True),
                        type=ftype or FieldType.STRING,
                        order_id=node.integer("order_id", i + 1),
                        default=node.raw("default"),
                        description=node.string("description"),
                        placeholder=node.string("placeholder"),
                        choices=freeze(self._choices(node, ftype)),
                        boolean_display=freeze(self._boolean_display(node, ftype)),
                        label=freeze(node.mapping("label")),
                    ),
                )
            )
        return out

    def _choices(self, node: Node, ftype: FieldType | None) -> dict[str, str]:
        if not node.has("choices"):
            if ftype is not None and ftype in CHOICE_TYPES:
                node.error("choices", f"required for a {_fname(ftype)} field ({{value: label, ...}})")
            return {}
        if ftype is not None and ftype not in CHOICE_TYPES:
            node.error(
                "choices",
                f"only radio, checkbox, select and multi_select fields have choices, not {_fname(ftype)}",
            )
            return {}
        raw = node.mapping("choices")
        if not raw:
            node.error("choices", "must list at least one choice ({value: label, ...})")
        out: dict[str, str] = {}
        for value, text in raw.items():
            path = join(node.at("choices"), str(value))
            if isinstance(value, bool) or not isinstance(value, str | int):
                self.problems.add(path, f"a choice value must be a string or an integer, got {kind(value)}")
            elif isinstance(text, bool) or not isinstance(text, str | int | float) or not str(text).strip():
                self.problems.add(path, f"a choice label must be a non-empty string, got {kind(text)}")
            else:
                out[str(value)] = str(text).strip()
        return out

    def _boolean_display(self, node: Node, ftype: FieldType | None) -> dict[str, str]:
        if not node.has("boolean_display"):
            return {}
        if ftype is not None and ftype != FieldType.BOOL:
            node.error("boolean_display", f"only bool fields have boolean_display, not {_fname(ftype)}")
            return {}
        out: dict[str, str] = {}
        for value, text in node.mapping("boolean_display").items():
            key = {1: "1", 0: "0", "1": "1", "0": "0"}.get(value)  # True == 1 and False == 0 as keys
            if key is None:
                node.error("boolean_display", f"keys are 0 and 1 (or false and true), got {value!r}")
            elif not isinstance(text, str) or not text.strip():
                self.problems.add(
                    join(node.at("boolean_display"), key), f"expected a label, got {kind(text)}"
                )
            else:
                out[key] = text.strip()
        return out

    def defaults(self, fields: list[tuple[int, CustomField]]) -> tuple[CustomField, ...]:
        """The fields with their defaults validated and coerced by core.fields.coerce."""
        out: list[CustomField] = []
        for i, f in fields:
            if f.default is None:
                out.append(f)
                continue
            try:
                value = coerce(f, f.default, self.org)
            except FieldValueError as exc:
                self.problems.add(join(join("fields", i), "default"), exc.message)
                continue
            out.append(replace(f, default=value))
        return tuple(out)

    # workflow-level -------------------------------------------------------------------------------

    def permissions(self, root: Node) -> Permissions:
        if not root.has("permissions"):
            return Permissions()
        node = root.child("permissions", _PERMISSION_KEYS)
        if node is None:
            return Permissions()
        lists: dict[str, frozenset[str]] = {}
        for key in _PERMISSION_KEYS:
            names = node.strings(key)
            if key != "api_apps":  # app names are checked by the loader against apps.yaml
                for j, username in enumerate(names):
                    self.need_user(join(node.at(key), j), username)
            lists[key] = frozenset(names)
        return Permissions(
            admins=lists["admins"],
            interveners=lists["interveners"],
            viewers=lists["viewers"],
            api_apps=lists["api_apps"],
        )

    # states ---------------------------------------------------------------------------------------

    def states(self, root: Node, field_keys: frozenset[str]) -> list[tuple[int, State]]:
        out: list[tuple[int, State]] = []
        seen: dict[int, int] = {}
        if root.has("states") and root.raw("states") == []:
            root.error("states", "must list at least one state")
        for i, node in self.items(root, "states", _STATE_KEYS, ("id", "name")):
            state_id = node.optional_int("id", minimum=1)
            if state_id is not None and state_id in seen:
                node.error("id", f"duplicate state id {state_id} (also states[{seen[state_id]}])")
                state_id = None
            distribute = node.choice("distribute", DISTRIBUTES, "distribute type", Distribute.DIRECT)
            if node.has("reject_policy") and distribute != Distribute.ALL:
                node.error("reject_policy", "only applies to states with distribute: all")
            stype = self._state_type(node)
            state = State(
                id=state_id or 0,
                name=node.string("name", nonempty=True),
                type=stype,
                order_id=node.integer("order_id", i + 1),
                is_hidden=node.boolean("is_hidden"),
                enable_retreat=node.boolean("enable_retreat"),
                remember_last_man=node.boolean("remember_last_man"),
                participant=(
                    self.participant(node.raw("participant"), node.at("participant"), field_keys)
                    if node.has("participant")
                    else Participant()
                ),
                distribute=distribute,
                reject_policy=node.choice(
                    "reject_policy", REJECT_POLICIES, "reject policy", RejectPolicy.FIRST_REJECT
                ),
                fields=freeze(self._state_fields(node, field_keys)),
                cc=self.cc_list(node, field_keys),
                label=freeze(node.mapping("label")),
                wait_subtickets=node.boolean("wait_subtickets"),
                sla=read_sla(node, is_end=stype == StateType.END),
            )
            if state_id is not None:
                seen[state_id] = i
                out.append((i, state))
            else:
                self.graph_incomplete = True
        return out

    def _state_type(self, node: Node) -> StateType:
        found = pick(
            self.problems, node.at("type"), node.raw("type"), STATE_TYPES, "state type", required=False
        )
        if found is None and node.has("type"):
            self.graph_incomplete = True
        return found or StateType.NORMAL

    def _state_fields(self, node: Node, field_keys: frozenset[str]) -> dict[str, FieldAccess]:
        known = field_keys | BUILTIN_STATE_FIELDS
        out: dict[str, FieldAccess] = {}
        for key, value in node.mapping("fields").items():
            path = join(node.at("fields"), str(key))
            if not isinstance(key, str) or key not in known:
                self.problems.add(
                    path,
                    f"unknown field{suggest(str(key), known)}; "
                    f"declared fields: {listing(sorted(field_keys))} (built-in: title)",
                )
                continue
            access = pick(self.problems, path, value, FIELD_ACCESS, "field access")
            if access is not None:
                out[key] = access
        return out

    def cc_list(self, node: Node, field_keys: frozenset[str]) -> tuple[Participant, ...]:
        return tuple(
            self.participant(item, join(node.at("cc"), j), field_keys, cc=True)
            for j, item in enumerate(node.seq("cc"))
        )

    # participants ---------------------------------------------------------------------------------

    def participant(
        self, raw: Any, path: str, field_keys: frozenset[str], *, cc: bool = False
    ) -> Participant:
        """The participant at `path`; Participant() after reporting a problem."""
        node = Node.of(self.problems, path, raw, _PARTICIPANT_KEYS, required=("type",))
        ptype = (
            None
            if node is None
            else pick(
                self.problems,
                node.at("type"),
                node.raw("type"),
                PARTICIPANT_TYPES,
                "participant type",
                required=False,
            )
        )
        if node is None or ptype is None:
            return Participant()
        if ptype == ParticipantType.SCRIPT:
            node.error("type", SCRIPT_REFUSED)
            return Participant()
        if cc and ptype not in CC_TYPES:
            allowed = ", ".join(n for n, t in PARTICIPANT_TYPES.items() if t in CC_TYPES)
            node.error("type", f"a CC list cannot use participant type {_pname(ptype)} (allowed: {allowed})")
            return Participant()
        if ptype != ParticipantType.HOOK and node.has("hook"):
            node.error("hook", "only participants of type hook have a hook")
        value = node.raw("value")
        if ptype == ParticipantType.NONE:
            if value not in (None, ""):
                node.error("value", "a participant of type none has no value")
            return Participant()
        if ptype == ParticipantType.HOOK:
            if value is not None:
                node.error("value", "a hook participant is configured under 'hook', not 'value'")
            hook = self._hook(node)
            return Participant() if hook is None else Participant(ptype, hook.url, hook)
        if value is None or value == "" or value == []:
            node.error("value", f"required for a participant of type {_pname(ptype)}")
            return Participant()
        text = self._participant_value(node, ptype, value, field_keys)
        return Participant() if text is None else Participant(ptype, text)

    def _participant_value(
        self, node: Node, ptype: ParticipantType, value: Any, field_keys: frozenset[str]
    ) -> str | None:
        vpath = node.at("value")
        if ptype == ParticipantType.PERSON:
            if not isinstance(value, str):
                node.error("value", f"expected one username, got {kind(value)} (use type people for several)")
                return None
            return value.strip() if self.need_user(vpath, value.strip()) else None
        if ptype == ParticipantType.PEOPLE:
            names = _name_list(value)
            if names is None:
                node.error("value", f"expected a list of usernames (or 'a,b'), got {kind(value)}")
                return None
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                node.error("value", f"listed more than once: {', '.join(dupes)}")
            ok = all([self.need_user(join(vpath, j), n) for j, n in enumerate(names)])
            return ",".join(dict.fromkeys(names)) if ok else None
        if ptype in (ParticipantType.DEPARTMENT, ParticipantType.ROLE):
            return self._groups(node, ptype, value)
        if ptype in (ParticipantType.VARIABLE, ParticipantType.FIELD):
            options = (
                sorted(v.value for v in Variable) if ptype == ParticipantType.VARIABLE else sorted(field_keys)
            )
            what = "variable" if ptype == ParticipantType.VARIABLE else "field"
            if not isinstance(value, str) or value.strip() not in options:
                shown = f"'{value}'{suggest(value, options)}" if isinstance(value, str) else kind(value)
                node.error("value", f"unknown {what} {shown}; known: {listing(options)}")
                return None
            ftype = self.field_types.get(value.strip())
            if ptype == ParticipantType.FIELD and ftype is not None and ftype not in PERSON_FIELD_TYPES:
                node.error(
                    "value",
                    f"field '{value.strip()}' has type {_fname(ftype)}; a participant field holds "
                    "usernames (user, multi_user or string)",
                )
                return None
            return value.strip()
        if ptype == ParticipantType.PARENT_FIELD:
            if not isinstance(value, str) or not value.strip():
                node.error("value", f"expected a field key of the parent ticket, got {kind(value)}")
                return None
            return value.strip()
        # EXTERNAL
        if not isinstance(value, str) or not _URL_RE.match(value.strip()):
            node.error("value", f"expected an http(s) URL that answers with usernames, got {kind(value)}")
            return None
        return value.strip()

    def _hook(self, node: Node) -> Hook | None:
        if not node.has("hook"):
            node.error("hook", "required for a hook participant ({url, token, wait, extra_info})")
            return None
        hook = node.child("hook", _HOOK_KEYS, required=("url", "token"))
        if hook is None:
            return None
        url = hook.string("url", nonempty=True)
        if url and not _URL_RE.match(url):
            hook.error("url", f"expected an http(s) URL, got '{url}'")
        token = hook.string("token", nonempty=True)
        secret = resolve_env(token, self.env, self.problems, hook.at("token")) if token else None
        wait = hook.boolean("wait")
        extra = hook.string("extra_info")
        if not url or secret is None:
            return None
        return Hook(url=url, token=secret, wait=wait, extra_info=extra)

    def _groups(self, node: Node, ptype: ParticipantType, value: Any) -> str | None:
        what = "department" if ptype == ParticipantType.DEPARTMENT else "role"
        table: Mapping[int, Any] | None = None
        if self.org is not None:
            table = self.org.departments if what == "department" else self.org.roles
        items = value if isinstance(value, list) else [value]
        ids: list[int] = []
        for j, item in enumerate(items):
            path = join(node.at("value"), j) if isinstance(value, list) else node.at("value")
            if isinstance(item, bool) or not isinstance(item, int):
                self.problems.add(path, f"expected a {what} id (integer), got {kind(item)}")
            elif table is not None and item not in table:
                known = ", ".join(f"{k} ({v.name})" for k, v in sorted(table.items()))
                self.problems.add(path, f"unknown {what} {item} (known: {known or 'none'})")
            else:
                ids.append(item)
        if len(ids) != len(items):
            return None
        return ",".join(str(i) for i in dict.fromkeys(ids))

    def need_user(self, path: str, username: str) -> bool:
        if self.org is None or username in self.org.users:
            return True
        self.problems.add(path, f"unknown user '{username}'{suggest(username, self.org.users)}")
        return False

    # transitions ----------------------------------------------------------------------------------

    def transitions(self, root: Node, field_keys: frozenset[str]) -> list[tuple[int, Transition]]:
        out: list[tuple[int, Transition]] = []
        seen: dict[int, int] = {}
        known_names = field_keys | BUILTIN_NAMES
        for i, node in self.items(root, "transitions", _TRANSITION_KEYS, ("id", "name", "from", "to")):
            tid = node.optional_int("id", minimum=1)
            if tid is not None and tid in seen:
                node.error("id", f"duplicate transition id {tid} (also transitions[{seen[tid]}])")
                tid = None
            source = node.optional_int("from")
            target = node.optional_int("to")
            alert_enable = node.boolean("alert_enable")
            alert_text = node.string("alert_text")
            if alert_enable and not alert_text:
                node.error("alert_text", "required when alert_enable is true (the confirmation to show)")
            timer = (
                parse_duration(node.raw("timer"), self.problems, node.at("timer")) if node.has("timer") else 0
            )
            transition = Transition(
                id=tid or 0,
                name=node.string("name", nonempty=True),
                source_state_id=source or 0,
                destination_state_id=target or 0,
                attribute=node.choice("attribute", ATTRIBUTES, "transition attribute", Attribute.AGREE),
                conditions=self._conditions(node, known_names),
                timer_seconds=timer or 0,
                field_require_check=node.boolean("field_require_check", True),
                alert_enable=alert_enable,
                alert_text=alert_text,
                cc=self.cc_list(node, field_keys),
            )
            if tid is not None and source is not None and target is not None:
                seen[tid] = i
                out.append((i, transition))
            else:
                self.graph_incomplete = True
        return out

    def _conditions(self, node: Node, known_names: frozenset[str]) -> tuple[Condition, ...]:
        out: list[Condition] = []
        for j, item in enumerate(node.seq("conditions")):
            cnode = Node.of(
                self.problems, join(node.at("conditions"), j), item, _CONDITION_KEYS, ("expression", "to")
            )
            if cnode is None:
                self.graph_incomplete = True
                continue
            source = cnode.string("expression", nonempty=True)
            target = cnode.optional_int("to")
            try:
                expression = compile_expression(source, known_names) if source else None
            except ConditionError as exc:
                cnode.error("expression", str(exc))
                expression = None
            if expression is None or target is None:
                self.graph_incomplete = True
            else:
                out.append(Condition(expression, target))
        return tuple(out)


# --- whole-workflow checks --------------------------------------------------------------------------


def _state_label(s: State) -> str:
    return f"state {s.id} ({s.name})"


def _check_graph(
    problems: Problems,
    states: list[tuple[int, State]],
    transitions: list[tuple[int, Transition]],
    *,
    complete: bool,
) -> None:
    """References between states and transitions, then (when the graph is complete and sound) the
    flow checks: start/end states, outgoing transitions, reachability, a way to an end."""
    by_id = {s.id: (i, s) for i, s in states}
    known = listing(sorted(by_id))
    edges: dict[int, set[int]] = {s.id: set() for _, s in states}
    names: dict[tuple[int, str], int] = {}
    sound = complete
    for i, t in transitions:
        base = join("transitions", i)
        source = by_id.get(t.source_state_id)
        if source is None:
            problems.add(join(base, "from"), f"unknown state id {t.source_state_id} (known: {known})")
            sound = False
        elif source[1].type == StateType.END:
            problems.add(
                join(base, "from"),
                f"{_state_label(source[1])} is an end state; end states have no outgoing transitions",
            )
        targets = [(join(base, "to"), t.destination_state_id)]
        targets += [
            (join(join(join(base, "conditions"), j), "to"), c.target_state_id)
            for j, c in enumerate(t.conditions)
        ]
        for path, target in targets:
            if target not in by_id:
                problems.add(path, f"unknown state id {target} (known: {known})")
                sound = False
            elif source is not None:
                edges[t.source_state_id].add(target)
        if source is not None:
            other = names.setdefault((t.source_state_id, t.name), i)
            if other != i:
                problems.add(
                    join(base, "name"),
                    f"{_state_label(source[1])} already has a transition named '{t.name}' "
                    f"(transitions[{other}])",
                )
    if not complete or not states:
        return  # the start/end checks would only echo a state that could not be read

    starts = [(i, s) for i, s in states if s.type == StateType.START]
    ends = {s.id for _, s in states if s.type == StateType.END}
    if not starts:
        problems.add("states", "no start state (exactly one state needs type: start)")
    for i, _ in starts[1:]:
        first_index, first = starts[0]
        problems.add(
            join(join("states", i), "type"),
            f"a second start state; {_state_label(first)} (states[{first_index}]) is already the start",
        )
    if not ends:
        problems.add("states", "no end state (at least one state needs type: end)")
    if not sound:
        return
    for i, s in states:
        if s.type != StateType.END and not edges[s.id]:
            problems.add(join("states", i), f"{_state_label(s)} has no outgoing transition")
    if len(starts) != 1 or not ends:
        return
    start = starts[0][1]
    reached = _reach(start.id, edges)
    for i, s in states:
        if s.id not in reached:
            problems.add(
                join("states", i), f"{_state_label(s)} is not reachable from the start state {start.id}"
            )
        elif s.type != StateType.END and edges[s.id] and not (_reach(s.id, edges) & ends):
            problems.add(join("states", i), f"{_state_label(s)} has no path to an end state")


def _reach(start: int, edges: Mapping[int, set[int]]) -> set[int]:
    seen = {start}
    todo = [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _display_fields(root: Node, field_keys: frozenset[str]) -> tuple[str, ...]:
    known = field_keys | BUILTIN_NAMES
    names = root.strings("display_fields")
    for j, key in enumerate(names):
        if key not in known:
            root.problems.add(
                join(root.at("display_fields"), j),
                f"unknown field '{key}'{suggest(key, known)}; "
                f"declared fields: {listing(sorted(field_keys))} (built-in: title, creator)",
            )
    return tuple(names)


def _title_template(root: Node, field_keys: frozenset[str]) -> str:
    template = root.string("title_template")
    known = field_keys | TITLE_NAMES
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        root.error("title_template", f"malformed template: {exc}")
        return template
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in known:
            root.error(
                "title_template",
                f"unknown placeholder '{{{name}}}'{suggest(name, known)}; known: {listing(sorted(known))}",
            )
        elif spec or conversion:
            root.error("title_template", f"placeholder '{{{name}}}' takes no format spec or conversion")
    return template


# --- across files -----------------------------------------------------------------------------------


def _check_across(parsed: Iterable[_Parsed]) -> list[str]:
    errors: list[str] = []
    wf_ids: dict[int, str] = {}
    state_ids: dict[int, tuple[str, str]] = {}
    transition_ids: dict[int, tuple[str, str]] = {}
    for p in parsed:
        if p.workflow_id is not None:
            first = wf_ids.setdefault(p.workflow_id, p.file)
            if first != p.file:
                errors.append(f"{p.file}: id: workflow id {p.workflow_id} is already used by {first}")
        for what, ids, seen in (
            ("state", p.state_ids, state_ids),
            ("transition", p.transition_ids, transition_ids),
        ):
            for item_id, path in ids:
                file, where = seen.setdefault(item_id, (p.file, path))
                if file != p.file:
                    errors.append(
                        f"{p.file}: {path}.id: {what} id {item_id} is already used by {file} ({where}); "
                        f"{what} ids must be unique across all workflows"
                    )
    return errors


# --- small helpers ----------------------------------------------------------------------------------


def _name_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    return None


def _fname(ftype: FieldType) -> str:
    return next((n for n, t in FIELD_TYPES.items() if t == ftype), str(ftype))


def _pname(ptype: ParticipantType) -> str:
    return next((n for n, t in PARTICIPANT_TYPES.items() if t == ptype), str(ptype))
