"""Component values in requests (create, switch): ``component_list``, a list of
``{"component_id": N, "value": "...", "values": [...]}`` (or ``"key": "<field key>"`` or
``"title": "<its title>"`` instead of the component_id), read by component type as the detail
writes them (api.workorder.codes):

- text-like components (input, textarea, richText, date, datetime) take ``value``;
- radio / select / member take one item, checked / selectMultiple / memberMultiple a list, in
  ``values`` (or a single one in ``value``): option names (or the option's stored value), staff ids
  (WeCom userids or usernames) for members;
- file takes ``values``: urls, or objects with a ``url``.

An empty value leaves the component out. The engine then checks the values against the template
(required components, read-only ones, types), refusing the whole request with its own sentence.
"""

from __future__ import annotations

from typing import Any

from api.workorder.components import CHOICE_LIKE, LIST_TYPES, by_reference, options
from api.workorder.errcodes import bad
from api.workorder.staff import Staff
from core.workflow import CustomField, FieldType, Workflow

MAX_COMPONENTS = 200
ITEM_KEYS = frozenset({"component_id", "key", "value", "values", "component_type", "title", "sort"})
PEOPLE = frozenset({FieldType.USER, FieldType.MULTI_USER})


def _name(f: CustomField) -> str:
    return f"component '{f.name}' ({f.key})"


def _items(value: Any, values: Any) -> list[Any]:
    if isinstance(values, list):
        return [v for v in values if v not in (None, "")]
    if values not in (None, ""):
        return [values]
    if isinstance(value, list):
        return [v for v in value if v not in (None, "")]
    return [] if value in (None, "") else [value]


def _file(f: CustomField, items: list[Any]) -> list[str] | None:
    urls: list[str] = []
    for item in items:
        url = item.get("url") if isinstance(item, dict) else item
        if not isinstance(url, str) or not url.strip():
            raise bad(f"{_name(f)} takes urls (or objects with a 'url'), got {str(item)[:60]!r}")
        urls.append(url.strip())
    return urls or None


def _option(f: CustomField, item: Any) -> str:
    if isinstance(item, bool) and f.type == FieldType.BOOL:
        return "1" if item else "0"
    text = str(item).strip() if isinstance(item, str | int) and not isinstance(item, bool) else None
    pairs = options(f)
    for key, name in pairs:
        if text is not None and text in (key, name):
            return key
    names = ", ".join(repr(name) for _, name in pairs[:20]) or "none"
    raise bad(f"{_name(f)} has no option {str(item)[:60]!r}; its options: {names}")


def _person(f: CustomField, item: Any, staff: Staff) -> str:
    username = staff.username_of(item) if isinstance(item, str) else None
    if username is None:
        raise bad(f"{_name(f)}: no active staff member {str(item)[:60]!r}")
    return username


def raw_value(f: CustomField, value: Any, values: Any, staff: Staff) -> Any:
    """The raw field value a component item gives (None: leave the field out)."""
    items = _items(value, values)
    if f.type == FieldType.ATTACHMENT:
        return _file(f, items)
    if f.type not in CHOICE_LIKE:
        chosen = value if value not in (None, "") else values
        if chosen in (None, ""):
            return None
        if isinstance(chosen, bool) or not isinstance(chosen, str | int | float):
            raise bad(f"{_name(f)} takes a text 'value', got {type(chosen).__name__}")
        return chosen
    picked = [_person(f, i, staff) if f.type in PEOPLE else _option(f, i) for i in items]
    if not picked:
        return None
    if f.type in LIST_TYPES:
        return list(dict.fromkeys(picked))
    if len(picked) > 1:
        raise bad(f"{_name(f)} takes one item, got {len(picked)}")
    return picked[0]


def field_values(wf: Workflow, raw: Any, staff: Staff, *, name: str = "component_list") -> dict[str, Any]:
    """The field values of a request's component list for template `wf` (see the module docstring)."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise bad(f"'{name}' must be a list of {{component_id, value, values}}")
    if len(raw) > MAX_COMPONENTS:
        raise bad(f"'{name}' has {len(raw)} items; at most {MAX_COMPONENTS}")
    refs = by_reference(wf)
    out: dict[str, Any] = {}
    for index, item in enumerate(raw):
        where = f"{name}[{index}]"
        if not isinstance(item, dict):
            raise bad(f"{where} must be an object {{component_id, value, values}}")
        unknown = sorted(set(item) - ITEM_KEYS)
        if unknown:
            raise bad(f"{where}: unknown key {unknown[0][:40]!r} (use component_id or key, value, values)")
        ref = next((item[k] for k in ("key", "component_id") if item.get(k) not in (None, "")), None)
        f: CustomField | None
        if ref is None:
            title = item.get("title")
            titled = [x for x in wf.fields if isinstance(title, str) and x.name == title]
            if not titled:
                shown = (
                    f"no component titled {title[:40]!r}" if isinstance(title, str) else "no component named"
                )
                raise bad(f"{where}: {shown}; name it by component_id, key or title (see template/list)")
            f = titled[0]
        else:
            f = refs.get(str(ref)) if isinstance(ref, str | int) and not isinstance(ref, bool) else None
        if f is None:
            raise bad(f"{where}: template {wf.id} has no component {str(ref)[:40]!r} (see template/list)")
        if f.key in out:
            raise bad(f"{where}: {_name(f)} is given twice")
        value = raw_value(f, item.get("value"), item.get("values"), staff)
        if value is not None:
            out[f.key] = value
    return out
