"""Components: a template's custom fields as the open API shows them.

- ``component_id``: a stable number for a template's field, the CRC-32 of "<template_id>/<field
  key>" (31 bits), so it survives edits of the template's YAML; the field ``key`` is given beside
  it in the template list, and requests may name a component by either.
- A work order's ``work_order_component_record_list`` has one record per field of its template, in
  the template's order (``sort`` 1, 2, ...), with the 12 keys of the vendor's example: ``id`` (the
  record: ticket id x 1000 + sort), ``corp_id`` and ``order_no`` as integers, ``created_at`` (the
  order's creation) and ``updated_at`` (the last step that changed the value) as ISO 8601 times in
  +08:00, and ``value`` / ``values`` by component type (api.workorder.codes).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from api.workorder.codes import COMPONENT_TYPES, INPUT_TYPES, ComponentType
from api.workorder.staff import Staff
from api.workorder.times import iso_cst
from core.order_no import order_no
from core.ticket import FlowLog, Ticket
from core.workflow import CustomField, FieldAccess, FieldType, Workflow

RECORDS_PER_ORDER = 1000
BOOL_NAMES = {"1": "是", "0": "否"}
LIST_TYPES = frozenset({FieldType.CHECKBOX, FieldType.MULTI_SELECT, FieldType.MULTI_USER})
CHOICE_LIKE = frozenset(
    {
        FieldType.BOOL,
        FieldType.RADIO,
        FieldType.SELECT,
        FieldType.CHECKBOX,
        FieldType.MULTI_SELECT,
        FieldType.USER,
        FieldType.MULTI_USER,
    }
)


def component_id(template_id: int, key: str) -> int:
    return zlib.crc32(f"{template_id}/{key}".encode()) & 0x7FFFFFFF


def component_type(f: CustomField) -> ComponentType:
    return COMPONENT_TYPES.get(f.type, ComponentType.INPUT)


def ordered_fields(wf: Workflow) -> list[CustomField]:
    """The template's fields in display order: by order_id, then as defined."""
    return [f for _, f in sorted(enumerate(wf.fields), key=lambda pair: (pair[1].order_id, pair[0]))]


def options(f: CustomField) -> list[tuple[str, str]]:
    """(stored value, option_name) of a choice field (a BOOL's are "1" / "0")."""
    if f.type == FieldType.BOOL:
        return [(k, str(f.boolean_display.get(k) or name)) for k, name in BOOL_NAMES.items()]
    return [(k, str(name)) for k, name in f.choices.items()]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def value_pair(f: CustomField, value: Any, staff: Staff) -> tuple[str, Any]:
    """(value, values) of a stored field value, by component type (api.workorder.codes)."""
    if f.type == FieldType.ATTACHMENT:
        return "", [str(v) for v in value] if isinstance(value, list | tuple) else []
    if f.type not in CHOICE_LIKE:
        return _text(value), ""
    if value is None or value == [] or value == "":
        return "", None
    items = list(value) if isinstance(value, list | tuple) else [value]
    if f.type in (FieldType.USER, FieldType.MULTI_USER):
        return "", [staff.id_of(str(u)) for u in items]
    names = dict(options(f))
    return "", [names.get(_text(v), _text(v)) for v in items]


def _changed_at(key: str, logs: Sequence[FlowLog], created_at: datetime) -> datetime:
    """When the field last changed: the last step whose field snapshot differs from the one before."""
    at, before = created_at, None
    for log in logs:
        now = log.fields.get(key)
        if now != before:
            at, before = log.created_at, now
    return at


def record_list(
    ticket: Ticket, wf: Workflow, logs: Sequence[FlowLog], staff: Staff, corp_id: int
) -> list[dict[str, Any]]:
    number = int(order_no(ticket.id))
    out = []
    for sort, f in enumerate(ordered_fields(wf), start=1):
        value, values = value_pair(f, ticket.fields.get(f.key), staff)
        out.append(
            {
                "component_id": component_id(wf.id, f.key),
                "component_type": str(component_type(f)),
                "corp_id": corp_id,
                "created_at": iso_cst(ticket.created_at),
                "id": ticket.id * RECORDS_PER_ORDER + sort,
                "order_no": number,
                "sort": sort,
                "template_id": wf.id,
                "title": f.name,
                "updated_at": iso_cst(_changed_at(f.key, logs, ticket.created_at)),
                "value": value,
                "values": values,
            }
        )
    return out


def _default(f: CustomField, staff: Staff) -> Any:
    value, values = value_pair(f, f.default, staff)
    return values if f.default is not None and values not in ("", None) else value


def template_component(wf: Workflow, f: CustomField, sort: int, staff: Staff) -> dict[str, Any]:
    """One entry of a template's ``component_list``: what a create request fills in."""
    start = wf.start_state()
    access = start.fields.get(f.key)
    config: dict[str, Any] = {
        "option_list": [{"option_name": name, "option_img_src": ""} for _, name in options(f)],
        "input_type": INPUT_TYPES.get(f.type, ""),
        "placeholder": f.placeholder,
        "description": f.description,
        "default_value": _default(f, staff),
        "enable_mark_tag": False,
        "multiple": f.type in LIST_TYPES,
    }
    return {
        "component_id": component_id(wf.id, f.key),
        "component_type": str(component_type(f)),
        "key": f.key,
        "title": f.name,
        "sort": sort,
        "required": access == FieldAccess.REQUIRED,
        "editable": access in (FieldAccess.REQUIRED, FieldAccess.OPTIONAL),
        "config": config,
    }


def template_components(wf: Workflow, staff: Staff) -> list[dict[str, Any]]:
    return [template_component(wf, f, sort, staff) for sort, f in enumerate(ordered_fields(wf), start=1)]


def by_reference(wf: Workflow) -> Mapping[str, CustomField]:
    """The template's fields by key and by str(component_id)."""
    out: dict[str, CustomField] = {}
    for f in wf.fields:
        out[f.key] = f
        out[str(component_id(wf.id, f.key))] = f
    return out
