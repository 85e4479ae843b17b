"""Custom-field values: validation and coercion by loonflow field type, choices and defaults.

`coerce` turns a raw value (from a form, an API call or a chat command) into the canonical value
stored on the ticket, or raises `FieldValueError` with a sentence naming the field:

==========================  =====================================================================
field type                  canonical value and what is accepted
==========================  =====================================================================
STRING / TEXTAREA /         str; numbers are converted with str(); at most 10,000 characters
RICH_TEXT                   (100,000 for textarea and rich text)
INT                         int; an int, a float without a fraction, or a str such as "3" / " -3 "
FLOAT                       float; an int, a float or a numeric str; never NaN or infinity
BOOL                        bool; a bool, 0/1, or "0"/"1"/"true"/"false" (any case)
DATE                        "YYYY-MM-DD"; an ISO date str or a `datetime.date`
DATETIME                    "YYYY-MM-DD HH:MM:SS"; "YYYY-MM-DD HH:MM[:SS[.ffffff]]" with a space or
                            a "T", or a naive `datetime.datetime`; seconds default to 00, fractions
                            are dropped, time zones are refused (there is no zone to convert to)
RADIO / SELECT              str, one of the field's choice keys; an int whose str() is a key
CHECKBOX / MULTI_SELECT     list[str] of choice keys; a list or a comma-separated str
USER                        str, a username; with an org it must be an active user
MULTI_USER                  list[str] of usernames; a list or a comma-separated str
ATTACHMENT                  list[str] of URLs/paths; a list or a single str (never split)
==========================  =====================================================================

Lists are deduplicated keeping their order; items of comma-separated strings are stripped and
empty items are skipped. None is returned as None for every type: whether a value is required is
decided elsewhere. Booleans are never accepted as numbers, nor numbers other than 0/1 as booleans.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from core.errors import CoreError
from core.org import Org
from core.workflow import CustomField, FieldType

STRING_MAX = 10_000
TEXT_MAX = 100_000
ITEM_MAX = 2_000  # one attachment URL/path, username or choice key
_SHOW = 80  # at most this many characters of a bad value in a message
_FEW_CHOICES = 10

_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_DATETIME_RE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[T ](?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)"
    r"(?P<tz>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?\Z"
)
_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false"})


class FieldValueError(CoreError):
    """A value does not fit its field; the message names the field and what is wrong."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _show(value: Any) -> str:
    """A short, printable rendering of a bad value (at most 80 characters)."""
    if isinstance(value, str):
        text = repr(value[: _SHOW * 2])
    else:
        try:
            text = repr(value)
        except Exception:
            text = f"<{type(value).__name__}>"
    return text if len(text) <= _SHOW else text[: _SHOW - 3] + "..."


def _name(field: CustomField) -> str:
    return f"field '{field.name}' ({field.key})"


def _fail(field: CustomField, expected: str, raw: Any) -> FieldValueError:
    return FieldValueError(field.key, f"{_name(field)} expects {expected}, got {_show(raw)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- one function per kind of field -------------------------------------------------------------


def _text(field: CustomField, raw: Any, limit: int) -> str:
    if isinstance(raw, str):
        value = raw
    elif _is_number(raw):
        value = str(raw)
    else:
        raise _fail(field, "text", raw)
    if len(value) > limit:
        raise FieldValueError(
            field.key, f"{_name(field)} is too long ({len(value)} characters, at most {limit:,})"
        )
    return value


def _string(field: CustomField, raw: Any, org: Org | None) -> str:
    return _text(field, raw, STRING_MAX)


def _long_text(field: CustomField, raw: Any, org: Org | None) -> str:
    return _text(field, raw, TEXT_MAX)


def _int(field: CustomField, raw: Any, org: Org | None) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and len(raw) <= 100 and _INT_RE.match(raw.strip()):
        return int(raw.strip())
    raise _fail(field, "an integer", raw)


def _float(field: CustomField, raw: Any, org: Org | None) -> float:
    value: float | None = None
    try:
        if _is_number(raw):
            value = float(raw)
        elif isinstance(raw, str) and len(raw) <= 100 and _FLOAT_RE.match(raw.strip()):
            value = float(raw.strip())
    except OverflowError:
        value = None
    if value is None or not math.isfinite(value):
        raise _fail(field, "a finite number", raw)
    return value


def _bool(field: CustomField, raw: Any, org: Org | None) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return raw == 1
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _fail(field, "a boolean (true/false or 1/0)", raw)


def _date(field: CustomField, raw: Any, org: Org | None) -> str:
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        return raw.isoformat()
    if isinstance(raw, str) and len(raw) <= 40:
        try:
            return dt.date.fromisoformat(raw.strip()).isoformat()
        except ValueError:
            pass
    raise _fail(field, "a date such as 2024-05-31", raw)


def _format_datetime(value: dt.datetime) -> str:
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )


def _datetime(field: CustomField, raw: Any, org: Org | None) -> str:
    expected = "a date and time such as 2024-05-31 14:30:00"
    if isinstance(raw, dt.datetime):
        if raw.tzinfo is not None:
            raise _fail(field, expected + " without a time zone", raw)
        return _format_datetime(raw)
    if not isinstance(raw, str) or len(raw) > 40:
        raise _fail(field, expected, raw)
    m = _DATETIME_RE.match(raw.strip())
    if m is None:
        raise _fail(field, expected, raw)
    if m.group("tz"):
        raise _fail(field, expected + " without a time zone", raw)
    try:
        value = dt.datetime.fromisoformat(f"{m.group('date')}T{m.group('time')}")
    except ValueError:
        raise _fail(field, expected, raw) from None
    return _format_datetime(value)


def _choices_text(field: CustomField) -> str:
    keys = list(field.choices)
    if not keys:
        return "a choice, but it defines none"
    shown = ", ".join(repr(k) for k in keys[:_FEW_CHOICES])
    more = f" (and {len(keys) - _FEW_CHOICES} more)" if len(keys) > _FEW_CHOICES else ""
    return f"one of {shown}{more}"


def _choice_key(field: CustomField, item: Any, raw: Any) -> str:
    key: str | None = None
    if isinstance(item, str):
        key = item if item in field.choices else item.strip()
    elif isinstance(item, int) and not isinstance(item, bool):
        key = str(item)
    if key is None or key not in field.choices:
        shown = f"{_show(item)} in {_show(raw)}" if item is not raw else _show(raw)
        raise FieldValueError(field.key, f"{_name(field)} expects {_choices_text(field)}, got {shown}")
    return key


def _choice(field: CustomField, raw: Any, org: Org | None) -> str:
    return _choice_key(field, raw, raw)


def _items(field: CustomField, raw: Any, expected: str) -> list[Any]:
    """A list of raw items from a list/tuple or a comma-separated str."""
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(raw, list | tuple):
        return list(raw)
    raise _fail(field, expected, raw)


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _multi_choice(field: CustomField, raw: Any, org: Org | None) -> list[str]:
    items = _items(field, raw, f"a list of choices ({_choices_text(field)})")
    return _dedupe([_choice_key(field, item, raw) for item in items])


def _username(field: CustomField, item: Any, raw: Any, org: Org | None) -> str:
    if not isinstance(item, str) or not item.strip() or len(item) > ITEM_MAX:
        where = f" in {_show(raw)}" if item is not raw else ""
        raise FieldValueError(field.key, f"{_name(field)} expects a username, got {_show(item)}{where}")
    name = item.strip()
    if org is not None and not org.active(name):
        problem = "is not an active user" if org.user(name) is not None else "is not a known user"
        raise FieldValueError(
            field.key, f"{_name(field)} expects an active user, but {_show(name)} {problem}"
        )
    return name


def _user(field: CustomField, raw: Any, org: Org | None) -> str:
    return _username(field, raw, raw, org)


def _multi_user(field: CustomField, raw: Any, org: Org | None) -> list[str]:
    items = _items(field, raw, "a list of usernames")
    return _dedupe([_username(field, item, raw, org) for item in items])


def _attachment(field: CustomField, raw: Any, org: Org | None) -> list[str]:
    expected = "a URL or path, or a list of them"
    items: list[Any]
    if isinstance(raw, str):
        items = [raw]
    elif isinstance(raw, list | tuple):
        items = list(raw)
    else:
        raise _fail(field, expected, raw)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise FieldValueError(
                field.key,
                f"{_name(field)} expects each attachment to be a non-empty URL or path, got {_show(item)}",
            )
        if len(item) > ITEM_MAX:
            raise FieldValueError(
                field.key,
                f"{_name(field)} has an attachment URL or path longer than {ITEM_MAX:,} characters",
            )
        out.append(item.strip())
    return _dedupe(out)


_COERCERS: Mapping[int, Callable[[CustomField, Any, Org | None], Any]] = {
    FieldType.STRING: _string,
    FieldType.TEXTAREA: _long_text,
    FieldType.RICH_TEXT: _long_text,
    FieldType.INT: _int,
    FieldType.FLOAT: _float,
    FieldType.BOOL: _bool,
    FieldType.DATE: _date,
    FieldType.DATETIME: _datetime,
    FieldType.RADIO: _choice,
    FieldType.SELECT: _choice,
    FieldType.CHECKBOX: _multi_choice,
    FieldType.MULTI_SELECT: _multi_choice,
    FieldType.USER: _user,
    FieldType.MULTI_USER: _multi_user,
    FieldType.ATTACHMENT: _attachment,
}


def coerce(field: CustomField, raw: Any, org: Org | None = None) -> Any:
    """Validate `raw` for `field` and return the canonical value stored on the ticket."""
    if raw is None:
        return None
    coercer = _COERCERS.get(field.type)
    if coercer is None:
        raise FieldValueError(field.key, f"{_name(field)} has an unsupported type {_show(field.type)}")
    return coercer(field, raw, org)


def coerce_all(
    defs: Mapping[str, CustomField], raw: Mapping[str, Any], org: Org | None = None
) -> dict[str, Any]:
    """Coerce every value of `raw` by its definition in `defs`; a key without one is an error."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        field = defs.get(key)
        if field is None:
            shown = str(key) if len(str(key)) <= 40 else str(key)[:37] + "..."
            raise FieldValueError(key, f"unknown field '{shown}'")
        out[key] = coerce(field, value, org)
    return out
