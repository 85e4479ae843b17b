"""Times as the open API writes them: epoch seconds (created_at, updated_at of orders and flows)
and ISO 8601 in China Standard Time (component records: "2021-12-17T19:43:02+08:00")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8))


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def epoch(value: datetime | None) -> int:
    return 0 if value is None else int(_aware(value).timestamp())


def iso_cst(value: datetime) -> str:
    return _aware(value).astimezone(CST).replace(microsecond=0).isoformat()


def seconds_between(start: datetime, end: datetime) -> int:
    return max(0, int((_aware(end) - _aware(start)).total_seconds()))
