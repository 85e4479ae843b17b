"""Business time: which instants count for an SLA with ``business_hours: true``.

A `BusinessCalendar` is working hours on working days at one fixed UTC offset (default +08:00,
no daylight saving): a day is a working day when it is listed in `workdays` (extra working days,
e.g. a Saturday that makes up for a holiday), or when its weekday is in `days` and it is not in
`holidays`. Business time runs on working days from `start` (inclusive) to `end`.

`add(at, duration)` is the instant at which `duration` of business time has passed after `at`.
Adding zero gives the next business instant (`at` itself when it is inside working hours). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

CHINA_OFFSET = timedelta(hours=8)
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
WEEKDAYS = frozenset({MON, TUE, WED, THU, FRI})
ONE_DAY = timedelta(days=1)
# a run of closed days longer than this means the calendar is (nearly) never open
MAX_CLOSED_RUN = 3660


class CalendarError(ValueError):
    """A calendar that cannot work (no working weekday, hours that end before they start...)."""


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    offset: timedelta = CHINA_OFFSET
    days: frozenset[int] = WEEKDAYS  # weekday numbers, Monday 0 ... Sunday 6
    start: time = time(9, 0)
    end: time = time(18, 0)
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.days and not self.workdays:
            raise CalendarError("a business calendar needs at least one working day")
        if not all(0 <= d <= 6 for d in self.days):
            raise CalendarError(f"weekdays are 0 (Monday) to 6 (Sunday), got {sorted(self.days)}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise CalendarError("working hours are local times without a timezone")
        if self.start >= self.end:
            raise CalendarError(f"working hours must end after they start ({self.start}-{self.end})")
        if abs(self.offset) >= ONE_DAY:
            raise CalendarError(f"a UTC offset is less than a day, got {self.offset}")

    @property
    def tz(self) -> timezone:
        return timezone(self.offset)

    @property
    def day_length(self) -> timedelta:
        return _on(date(2000, 1, 1), self.end) - _on(date(2000, 1, 1), self.start)

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() in self.days and day not in self.holidays

    def _next_open_day(self, day: date) -> date:
        for _ in range(MAX_CLOSED_RUN):
            if self.is_working_day(day):
                return day
            day += ONE_DAY
        raise CalendarError(f"no working day within {MAX_CLOSED_RUN} days of {day.isoformat()}")

    def _window(self, day: date) -> tuple[datetime, datetime]:
        """The working hours of `day` as naive local datetimes."""
        return _on(day, self.start), _on(day, self.end)

    def _local(self, at: datetime) -> datetime:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"naive datetime {at.isoformat()} (business time needs an aware one)")
        return at.astimezone(self.tz).replace(tzinfo=None)

    def _aware(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.tz).astimezone(UTC)

    def _normalize(self, local: datetime) -> datetime:
        """The first business instant at or after `local` (naive local time)."""
        day = local.date()
        if self.is_working_day(day):
            opens, closes = self._window(day)
            if local < opens:
                return opens
            if local < closes:
                return local
        day = self._next_open_day(day + ONE_DAY)
        return self._window(day)[0]

    def next_business_instant(self, at: datetime) -> datetime:
        """`at` when it is within working hours, else when they next begin (UTC)."""
        return self._aware(self._normalize(self._local(at)))

    def is_business_time(self, at: datetime) -> bool:
        local = self._local(at)
        return self._normalize(local) == local

    def add(self, at: datetime, duration: timedelta) -> datetime:
        """The instant (UTC) at which `duration` of business time has passed since `at`."""
        if duration < timedelta(0):
            raise ValueError(f"a business duration cannot be negative ({duration})")
        local = self._normalize(self._local(at))
        remaining = duration
        while True:
            closes = self._window(local.date())[1]
            available = closes - local
            if remaining <= available:
                return self._aware(local + remaining)
            remaining -= available
            local = self._window(self._next_open_day(local.date() + ONE_DAY))[0]


def _on(day: date, at: time) -> datetime:
    return datetime.combine(day, at)
