"""Field input on a ticket: validate what a person submits against the state's field
permissions, merge it, and check the required fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from core.decision import Context
from core.errors import Reason, Rejected
from core.fields import FieldValueError, coerce
from core.ticket import Ticket
from core.workflow import FieldAccess, State, Workflow

WRITABLE = (FieldAccess.REQUIRED, FieldAccess.OPTIONAL)


def empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == ()


def apply_fields(
    ticket: Ticket,
    wf: Workflow,
    state: State,
    provided: Mapping[str, Any],
    ctx: Context,
    *,
    any_field: bool = False,
    check_required: bool = True,
) -> Ticket | Rejected:
    """Validate `provided` against the state's field permissions and merge it into the ticket."""
    fields = dict(ticket.fields)
    title = ticket.title
    for key, raw in provided.items():
        access_ = state.fields.get(key)
        writable = any_field or access_ in WRITABLE
        if key == "title":
            writable = writable or ticket.id == 0  # the title is always settable when creating
            value: Any = str(raw).strip() if raw is not None else ""
            if len(value) > 500:
                return Rejected(Reason.BAD_FIELD, "the title is longer than 500 characters")
            if value != title and not writable:
                return Rejected(
                    Reason.READ_ONLY_FIELD, f"the title cannot be changed in state '{state.name}'"
                )
            title = value
            continue
        fdef = wf.field_def(key)
        if fdef is None:
            return Rejected(Reason.BAD_FIELD, f"unknown field '{key}' in workflow '{wf.name}'")
        try:
            value = coerce(fdef, raw, ctx.org)
        except FieldValueError as exc:
            return Rejected(Reason.BAD_FIELD, exc.message)
        if value == fields.get(key):
            continue  # clients often echo read-only values back unchanged: that is fine
        if not writable:
            return Rejected(
                Reason.READ_ONLY_FIELD, f"field '{fdef.name}' ({key}) is read-only in state '{state.name}'"
            )
        fields[key] = value
    if check_required:
        missing = []
        for key, access_ in state.fields.items():
            if access_ != FieldAccess.REQUIRED:
                continue
            value = title if key == "title" else fields.get(key)
            if empty(value):
                fdef = wf.field_def(key)
                missing.append(f"'{fdef.name}' ({key})" if fdef else f"'{key}'")
        if missing:
            return Rejected(Reason.MISSING_FIELD, f"required in state '{state.name}': {', '.join(missing)}")
    return replace(ticket, fields=fields, title=title)
