"""The business calendar from ``<config_dir>/calendar.yaml`` (optional) and the per-state ``sla``.

calendar.yaml (every key optional; without the file: Mon-Fri 09:00-18:00 at +08:00)::

    timezone: "+08:00"            # a fixed UTC offset (+HH:MM / -HH:MM); no daylight saving
    days: [mon, tue, wed, thu, fri]
    hours: "09:00-18:00"          # one span per working day
    holidays: [2026-10-01, 2026-10-02]    # days off although their weekday works
    workdays: [2026-10-10]        # extra working days (e.g. a Saturday that makes up for a holiday)

A state's ``sla`` (see workflows/README.md)::

    sla: {remind_after: 4h, remind_every: 4h, urge_after: 1d, escalate_after: 2d, business_hours: true}
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

from config._schema import Node, Problems, join, kind, read_yaml
from core.calendar import BusinessCalendar, CalendarError
from core.workflow import Sla

CALENDAR_FILE = "calendar.yaml"
DAY_NAMES = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_CALENDAR_KEYS = ("timezone", "days", "hours", "holidays", "workdays")
SLA_KEYS = ("remind_after", "remind_every", "urge_after", "escalate_after", "business_hours")
SLA_STEPS = ("remind_after", "urge_after", "escalate_after")

_OFFSET = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})\Z", re.IGNORECASE)
_HOURS = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\Z")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")
DURATION_HINT = "(e.g. 30m, 4h, 2d)"


def read_calendar(config_dir: Path) -> tuple[BusinessCalendar, list[str]]:
    """The calendar of `config_dir` (the default one when there is no calendar.yaml) and its errors."""
    path = config_dir / CALENDAR_FILE
    if not path.exists():
        return BusinessCalendar(), []
    problems = Problems(path.name)
    doc = read_yaml(path, problems)
    if doc is None or doc.data is None:
        return BusinessCalendar(), problems.errors
    root = Node.of(problems, "", doc.data, _CALENDAR_KEYS)
    if root is None:
        return BusinessCalendar(), problems.errors
    default = BusinessCalendar()
    offset = _offset(root) if root.has("timezone") else default.offset
    days = _days(root) if root.has("days") else default.days
    start, end = _hours(root) if root.has("hours") else (default.start, default.end)
    holidays = _dates(root, "holidays")
    workdays = _dates(root, "workdays")
    for both in sorted(holidays & workdays):
        root.error("workdays", f"{both.isoformat()} is listed both as a holiday and as a workday")
    if problems:
        return default, problems.errors
    try:
        return BusinessCalendar(offset, days, start, end, holidays, workdays), []
    except CalendarError as exc:
        problems.add("", str(exc))
        return default, problems.errors


def _offset(root: Node) -> timedelta:
    raw = root.raw("timezone")
    m = _OFFSET.match(raw.strip()) if isinstance(raw, str) else None
    if m is None or int(m.group(2)) > 14 or int(m.group(3)) > 59:
        root.error("timezone", f"expected a UTC offset like '+08:00', got {kind(raw)}")
        return BusinessCalendar().offset
    sign = -1 if m.group(1) == "-" else 1
    return sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))


def _days(root: Node) -> frozenset[int]:
    out: set[int] = set()
    for i, item in enumerate(root.seq("days")):
        day = DAY_NAMES.get(item.strip().lower()[:3]) if isinstance(item, str) else None
        if day is None:
            root.problems.add(
                join(root.at("days"), i), f"expected a weekday ({', '.join(DAY_NAMES)}), got {kind(item)}"
            )
        else:
            out.add(day)
    if not out and not root.problems:
        root.error("days", "must list at least one working weekday")
    return frozenset(out)


def _hours(root: Node) -> tuple[time, time]:
    raw = root.raw("hours")
    m = _HOURS.match(raw.strip()) if isinstance(raw, str) else None
    default = BusinessCalendar()
    if m is None:
        root.error("hours", f"expected working hours like '09:00-18:00', got {kind(raw)}")
        return default.start, default.end
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) >= (h2, m2):
        root.error("hours", f"'{raw}' is not a span of one day's hours (start before end, 00:00-23:59)")
        return default.start, default.end
    return time(h1, m1), time(h2, m2)


def _dates(root: Node, key: str) -> frozenset[date]:
    out: set[date] = set()
    for i, item in enumerate(root.seq(key)):
        try:
            if not isinstance(item, str):
                raise ValueError(item)
            out.add(date.fromisoformat(item.strip()))
        except ValueError:
            root.problems.add(join(root.at(key), i), f"expected a date like 2026-10-01, got {kind(item)}")
    return frozenset(out)


# --- sla --------------------------------------------------------------------------------------------


def duration(value: Any) -> timedelta | None:
    """A positive duration from '30m', '4h', '2d', '1d4h', or a number of seconds; None if invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return timedelta(seconds=value) if value > 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace(" ", "")
    if text.isdigit():
        return timedelta(seconds=int(text)) if int(text) > 0 else None
    m = _DURATION.match(text)
    if not text or m is None:
        return None
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    got = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    return got if got > timedelta(0) else None


def read_sla(state: Node, *, is_end: bool) -> Sla | None:
    """The `sla` of a state node (None when absent or wrong; problems are reported)."""
    if not state.has("sla"):
        return None
    node = state.child("sla", SLA_KEYS)
    if node is None:
        return None
    if is_end:
        state.error("sla", "an end state has no SLA (nobody waits there)")
        return None
    got: dict[str, timedelta | None] = {}
    ok = True
    for key in (*SLA_STEPS, "remind_every"):
        if not node.has(key):
            got[key] = None
            continue
        raw = node.raw(key)
        got[key] = duration(raw)
        if got[key] is None:
            shown = f"'{raw}'" if isinstance(raw, str) else kind(raw)
            node.error(key, f"{shown} is not a duration {DURATION_HINT}")
            ok = False
    if ok and not any(got[k] for k in SLA_STEPS):
        state.error("sla", f"give at least one of {', '.join(SLA_STEPS)}")
        ok = False
    if got["remind_every"] is not None and got["remind_after"] is None:
        node.error("remind_every", "repeats a reminder: needs remind_after")
        ok = False
    business = node.boolean("business_hours")
    if not ok:
        return None
    return Sla(
        remind_after=got["remind_after"],
        urge_after=got["urge_after"],
        escalate_after=got["escalate_after"],
        business_hours=business,
        remind_every=got["remind_every"],
    )
