"""The read side of workflows in the loonflow v1.0 dialect (loonflow 1.x / 2.x shapes).

Routes (under /api/v1.0; every answer in the envelope {"code", "msg", "data"}):

- ``GET /workflows?page=&per_page=&name=``: the workflows the calling app may use, as
  ``{value: [workflow...], page, per_page, total}``; `name` filters by substring (case-insensitive).
- ``GET /workflows/{id}``: one workflow (the same object as a list item).
- ``GET /workflows/{id}/init_state``: the start state with ``field_list`` (its fields with their
  ``field_attribute``: 1 read-only, 2 required, 3 optional) and ``transition`` (what "create
  ticket" may choose as its transition_id).
- ``GET /workflows/{id}/states?page=&per_page=&search_value=``: states, ordered by order_id.
- ``GET /workflows/{id}/transitions?page=&per_page=&search_value=``: transitions.
- ``GET /workflows/{id}/custom_fields?page=&per_page=&search_value=``: custom fields.
- ``GET /workflows/states/{state_id}``: one state (state ids are unique across workflows).

Lists default to page 1 and 10 per page as loonflow does (per_page at most 1000); a page past the
end is empty (loonflow answers its last page instead).

Differences from loonflow, on purpose:
- an app only sees the workflows it may use (apps.yaml ``workflows``): another one answers
  403 "app 'x' may not use workflow N" (loonflow: "APP:x have no permission to get this workflow
  info"), an unknown workflow or state 404;
- a hook participant shows its URL only: the hook token is never returned (loonflow returns the
  whole hook configuration, token included);
- workflows are YAML files, which have no author or creation time: ``creator`` is "admin" and
  ``gmt_created`` / ``gmt_modified`` are the time this process first served the workflow
  (gmt_modified: its current version), in UTC, as "YYYY-MM-DD HH:MM:SS";
- ``state_field_str`` and ``label`` are JSON objects, as loonflow 2.x's own state lists return
  them; ``default_value`` of a custom field is the typed default (an int for an int field, a list
  for a multi-select...) rather than loonflow's string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from api.context import Caller, caller, context
from api.envelope import ok
from api.errors import ApiError
from api.params import path_int, query_int
from core.org import Org
from core.workflow import (
    PARTICIPANT_TYPE_NAMES,
    CustomField,
    FieldType,
    Participant,
    ParticipantType,
    State,
    Transition,
    Variable,
    Workflow,
)

T = TypeVar("T")

DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 1000
CREATOR = "admin"
TIMER_TRANSITION, NORMAL_TRANSITION = 2, 1
_VARIABLE_ALIASES = {Variable.CREATOR.value: "工单创建人", Variable.CREATOR_TL.value: "工单创建人tl"}
# The built-in ticket attribute a state may grant access to, described as loonflow describes it.
_TITLE_FIELD = CustomField(
    key="title", name="标题", type=FieldType.STRING, order_id=20, description="工单的标题"
)

# (workflow id, version) -> when this process first served it: gmt_created / gmt_modified.
_first_served: dict[tuple[int, str], datetime] = {}


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _stamps(wf: Workflow, now: datetime) -> dict[str, str]:
    modified = _first_served.setdefault((wf.id, wf.version), now)
    created = min(t for (wid, _), t in _first_served.items() if wid == wf.id)
    return {"creator": CREATOR, "gmt_created": _fmt(created), "gmt_modified": _fmt(modified)}


# --- lookups and paging ------------------------------------------------------------------------------


def _workflow(request: web.Request, who: Caller) -> Workflow:
    workflow_id = path_int(request, "workflow_id")
    wf = context(request).catalog.get(workflow_id)
    if wf is None:
        raise ApiError(f"workflow {workflow_id} does not exist", 404)
    who.require(wf.id)
    return wf


def _page(request: web.Request, items: Sequence[T], render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    page = query_int(request, "page", 1, minimum=1, maximum=1_000_000) or 1
    per_page = query_int(request, "per_page", DEFAULT_PER_PAGE, minimum=1, maximum=MAX_PER_PAGE)
    per_page = per_page or DEFAULT_PER_PAGE
    start = (page - 1) * per_page
    return {
        "value": [render(item) for item in items[start : start + per_page]],
        "page": page,
        "per_page": per_page,
        "total": len(items),
    }


def _search(request: web.Request, name: str = "search_value") -> str:
    return request.query.get(name, "").strip().casefold()


# --- rendering ---------------------------------------------------------------------------------------


def workflow_dict(wf: Workflow, now: datetime) -> dict[str, Any]:
    return {
        "id": wf.id,
        "name": wf.name,
        "description": wf.description,
        "notices": "",
        "view_permission_check": wf.view_permission_check,
        "limit_expression": "{}",
        "display_form_str": json.dumps(list(wf.display_fields), ensure_ascii=False),
        "title_template": wf.title_template,
        **_stamps(wf, now),
    }


def participant_value(p: Participant) -> str:
    """The participant as loonflow's `participant` string; a hook shows its URL, never its token."""
    if p.type == ParticipantType.HOOK:
        return p.hook.url if p.hook is not None else p.value
    return p.value


def _id(text: str) -> int:
    return int(text) if text.strip().isascii() and text.strip().isdigit() else -1


def _alias(p: Participant, wf: Workflow, org: Org) -> str:
    parts = [part for part in p.value.split(",") if part]
    if p.type in (ParticipantType.PERSON, ParticipantType.PEOPLE):
        return ",".join((u.alias or u.username) if (u := org.user(n)) else n for n in parts)
    if p.type == ParticipantType.DEPARTMENT:
        return ",".join(d.name if (d := org.departments.get(_id(n))) else "未知" for n in parts)
    if p.type == ParticipantType.ROLE:
        return ",".join(r.name if (r := org.roles.get(_id(n))) else "未知" for n in parts)
    if p.type == ParticipantType.VARIABLE:
        return ",".join(_VARIABLE_ALIASES.get(n, "未知") for n in parts)
    if p.type == ParticipantType.FIELD:
        found = wf.field_def(p.value)
        return found.name if found is not None else p.value
    return participant_value(p)


def participant_info(p: Participant, wf: Workflow, org: Org) -> dict[str, Any]:
    value = participant_value(p)
    return {
        "participant": value,
        "participant_name": value,
        "participant_type_id": int(p.type),
        "participant_type_name": PARTICIPANT_TYPE_NAMES.get(int(p.type), ""),
        "participant_alias": _alias(p, wf, org),
    }


def state_dict(s: State, wf: Workflow, org: Org, now: datetime) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "workflow_id": wf.id,
        "is_hidden": s.is_hidden,
        "order_id": s.order_id,
        "type_id": int(s.type),
        "enable_retreat": s.enable_retreat,
        "remember_last_man_enable": s.remember_last_man,
        "participant_type_id": int(s.participant.type),
        "participant": participant_value(s.participant),
        "participant_info": participant_info(s.participant, wf, org),
        "distribute_type_id": int(s.distribute),
        "state_field_str": {key: int(access) for key, access in s.fields.items()},
        "label": dict(s.label),
        **_stamps(wf, now),
    }


def _condition_expression(t: Transition) -> str:
    return json.dumps(
        [{"expression": c.expression.source, "target_state_id": c.target_state_id} for c in t.conditions],
        ensure_ascii=False,
    )


def _state_ref(wf: Workflow, state_id: int) -> dict[str, Any]:
    found = wf.state(state_id)
    return {"id": state_id, "name": found.name if found is not None else "未知"}


def transition_dict(t: Transition, wf: Workflow, now: datetime) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "workflow_id": wf.id,
        "transition_type_id": TIMER_TRANSITION if t.timer_seconds > 0 else NORMAL_TRANSITION,
        "timer": t.timer_seconds,
        "source_state_id": t.source_state_id,
        "destination_state_id": t.destination_state_id,
        "condition_expression": _condition_expression(t),
        "attribute_type_id": int(t.attribute),
        "field_require_check": t.field_require_check,
        "alert_enable": t.alert_enable,
        "alert_text": t.alert_text,
        "source_state_info": _state_ref(wf, t.source_state_id),
        "destination_state_info": _state_ref(wf, t.destination_state_id),
        **_stamps(wf, now),
    }


def _field_common(f: CustomField) -> dict[str, Any]:
    return {
        "field_key": f.key,
        "field_name": f.name,
        "field_type_id": int(f.type),
        "order_id": f.order_id,
        "default_value": f.default,
        "description": f.description,
        "placeholder": f.placeholder,
        "field_template": "",
        "boolean_field_display": dict(f.boolean_display),
        "field_choice": dict(f.choices),
        "label": dict(f.label),
    }


def custom_field_dict(f: CustomField, wf: Workflow, now: datetime) -> dict[str, Any]:
    return {"workflow_id": wf.id, **_field_common(f), **_stamps(wf, now)}


def init_state_dict(wf: Workflow, org: Org, now: datetime) -> dict[str, Any]:
    start = wf.start_state()
    fields: list[dict[str, Any]] = []
    for key, access in start.fields.items():
        f = _TITLE_FIELD if key == _TITLE_FIELD.key else wf.field_def(key)
        if f is not None:
            fields.append({**_field_common(f), "field_value": None, "field_attribute": int(access)})
    fields.sort(key=lambda item: item["order_id"])
    transitions = [
        {
            "transition_id": t.id,
            "transition_name": t.name,
            "attribute_type_id": int(t.attribute),
            "field_require_check": t.field_require_check,
            "is_accept": False,
            "in_add_node": False,
            "enable_alert": t.alert_enable,
            "alert_enable": t.alert_enable,
            "alert_text": t.alert_text,
        }
        for t in wf.transitions_from(start.id)
    ]
    return {**state_dict(start, wf, org, now), "field_list": fields, "transition": transitions}


# --- handlers ----------------------------------------------------------------------------------------


async def list_workflows(request: web.Request) -> web.Response:
    who = caller(request)
    ctx = context(request)
    name = _search(request, "name")
    usable = [
        wf for wf in ctx.catalog.all() if who.may_use(wf.id) and (not name or name in wf.name.casefold())
    ]
    now = ctx.clock.now()
    return ok(_page(request, usable, lambda wf: workflow_dict(wf, now)))


async def get_workflow(request: web.Request) -> web.Response:
    wf = _workflow(request, caller(request))
    return ok(workflow_dict(wf, context(request).clock.now()))


async def init_state(request: web.Request) -> web.Response:
    wf = _workflow(request, caller(request))
    ctx = context(request)
    return ok(init_state_dict(wf, await ctx.directory.org(), ctx.clock.now()))


async def list_states(request: web.Request) -> web.Response:
    wf = _workflow(request, caller(request))
    ctx = context(request)
    org, now, search = await ctx.directory.org(), ctx.clock.now(), _search(request)
    states = sorted(
        (s for s in wf.states if not search or search in s.name.casefold()), key=lambda s: s.order_id
    )
    return ok(_page(request, states, lambda s: state_dict(s, wf, org, now)))


async def list_transitions(request: web.Request) -> web.Response:
    wf = _workflow(request, caller(request))
    now, search = context(request).clock.now(), _search(request)
    found = [t for t in wf.transitions if not search or search in t.name.casefold()]
    return ok(_page(request, found, lambda t: transition_dict(t, wf, now)))


async def list_custom_fields(request: web.Request) -> web.Response:
    wf = _workflow(request, caller(request))
    now, search = context(request).clock.now(), _search(request)
    found = [
        f
        for f in wf.fields
        if not search or any(search in text.casefold() for text in (f.key, f.name, f.description))
    ]
    return ok(_page(request, found, lambda f: custom_field_dict(f, wf, now)))


async def get_state(request: web.Request) -> web.Response:
    who = caller(request)
    ctx = context(request)
    state_id = path_int(request, "state_id")
    for wf in ctx.catalog.all():
        found = wf.state(state_id)
        if found is not None:
            who.require(wf.id)
            return ok(state_dict(found, wf, await ctx.directory.org(), ctx.clock.now()))
    raise ApiError(f"state {state_id} does not exist", 404)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/workflows", list_workflows)
    router.add_get(r"/workflows/states/{state_id:[0-9]+}", get_state)  # before /workflows/{workflow_id}
    router.add_get(r"/workflows/{workflow_id:[0-9]+}", get_workflow)
    router.add_get(r"/workflows/{workflow_id:[0-9]+}/init_state", init_state)
    router.add_get(r"/workflows/{workflow_id:[0-9]+}/states", list_states)
    router.add_get(r"/workflows/{workflow_id:[0-9]+}/transitions", list_transitions)
    router.add_get(r"/workflows/{workflow_id:[0-9]+}/custom_fields", list_custom_fields)
