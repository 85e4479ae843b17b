"""core.calendar.BusinessCalendar: business-time arithmetic (examples and properties)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.calendar import BusinessCalendar, CalendarError

CN = timezone(timedelta(hours=8))
CAL = BusinessCalendar(
    holidays=frozenset({date(2026, 10, 1), date(2026, 10, 2)}), workdays=frozenset({date(2026, 10, 10)})
)


def cn(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CN)


def test_inside_working_hours_time_simply_passes() -> None:
    assert CAL.add(cn(2026, 1, 5, 10, 0), timedelta(hours=4)) == cn(2026, 1, 5, 14, 0)


def test_a_duration_that_runs_past_closing_continues_the_next_morning() -> None:
    # Monday 16:00 + 4h = 2h Monday + 2h Tuesday
    assert CAL.add(cn(2026, 1, 5, 16, 0), timedelta(hours=4)) == cn(2026, 1, 6, 11, 0)


def test_friday_afternoon_crosses_the_weekend() -> None:
    # 2026-01-09 is a Friday: 17:00 + 2h = 1h Friday + 1h Monday
    assert CAL.add(cn(2026, 1, 9, 17, 0), timedelta(hours=2)) == cn(2026, 1, 12, 10, 0)


def test_a_weekend_start_counts_from_monday_morning() -> None:
    assert CAL.add(cn(2026, 1, 10, 12, 0), timedelta(hours=1)) == cn(2026, 1, 12, 10, 0)


def test_holidays_are_skipped_and_extra_workdays_count() -> None:
    # Wed 2026-09-30 17:00 + 2h: 1h Wednesday, Thu/Fri holidays, weekend, Monday 10:00
    assert CAL.add(cn(2026, 9, 30, 17, 0), timedelta(hours=2)) == cn(2026, 10, 5, 10, 0)
    # Friday 2026-10-09 17:30 + 1h: 30m Friday, then Saturday 10-10 is a working day
    assert CAL.add(cn(2026, 10, 9, 17, 30), timedelta(hours=1)) == cn(2026, 10, 10, 9, 30)


def test_one_working_day_is_the_same_time_the_next_working_day() -> None:
    assert CAL.add(cn(2026, 1, 9, 11, 0), timedelta(hours=9)) == cn(2026, 1, 12, 11, 0)


def test_adding_zero_gives_the_next_business_instant() -> None:
    assert CAL.add(cn(2026, 1, 5, 10, 0), timedelta(0)) == cn(2026, 1, 5, 10, 0)
    assert CAL.add(cn(2026, 1, 5, 7, 0), timedelta(0)) == cn(2026, 1, 5, 9, 0)
    assert CAL.add(cn(2026, 1, 5, 18, 0), timedelta(0)) == cn(2026, 1, 6, 9, 0)
    assert CAL.is_business_time(cn(2026, 1, 5, 9, 0)) and not CAL.is_business_time(cn(2026, 1, 5, 18, 0))


def test_results_are_utc_and_other_offsets_work() -> None:
    utc_cal = BusinessCalendar(offset=timedelta(0), days=frozenset(range(7)), start=time(0), end=time(23, 59))
    got = utc_cal.add(datetime(2026, 1, 5, 10, tzinfo=UTC), timedelta(hours=1))
    assert got == datetime(2026, 1, 5, 11, tzinfo=UTC) and got.tzinfo == UTC
    assert CAL.add(datetime(2026, 1, 5, 2, tzinfo=UTC), timedelta(hours=1)).tzinfo == UTC


@pytest.mark.parametrize(
    "kw",
    [
        {"days": frozenset()},
        {"start": time(18), "end": time(9)},
        {"days": frozenset({7})},
        {"offset": timedelta(hours=25)},
    ],
)
def test_impossible_calendars_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(CalendarError):
        BusinessCalendar(**kw)  # type: ignore[arg-type]


def test_naive_and_negative_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        CAL.add(datetime(2026, 1, 5, 10), timedelta(hours=1))
    with pytest.raises(ValueError):
        CAL.add(cn(2026, 1, 5, 10), timedelta(hours=-1))


# --- properties ------------------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
durations = st.integers(min_value=0, max_value=30 * 24 * 3600).map(lambda s: timedelta(seconds=s))
positive = st.integers(min_value=1, max_value=30 * 24 * 3600).map(lambda s: timedelta(seconds=s))
calendars = st.sampled_from(
    [
        CAL,
        BusinessCalendar(),
        BusinessCalendar(
            offset=timedelta(hours=-5), days=frozenset({0, 2, 4}), start=time(8, 30), end=time(12)
        ),
        BusinessCalendar(days=frozenset({5}), workdays=frozenset({date(2026, 3, 3)})),
    ]
)


@given(calendars, instants, durations, durations)
def test_later_starts_and_longer_durations_never_end_earlier(
    cal: BusinessCalendar, at: datetime, d1: timedelta, d2: timedelta
) -> None:
    short, long = sorted((d1, d2))
    assert cal.add(at, short) <= cal.add(at, long)
    assert cal.add(at, d1) <= cal.add(at + timedelta(hours=7), d1)


@given(calendars, instants, durations)
def test_business_time_is_never_faster_than_the_clock(
    cal: BusinessCalendar, at: datetime, d: timedelta
) -> None:
    end = cal.add(at, d)
    assert end >= at + d
    assert cal.is_business_time(end) or end.astimezone(cal.tz).time() == cal.end  # inside, or at closing


@given(calendars, instants)
def test_adding_zero_is_the_next_business_instant(cal: BusinessCalendar, at: datetime) -> None:
    got = cal.add(at, timedelta(0))
    assert got >= at and cal.is_business_time(got)
    assert got == at or not cal.is_business_time(at)


@given(calendars, instants, durations, positive)
def test_splitting_a_duration_gives_the_same_end(
    cal: BusinessCalendar, at: datetime, first: timedelta, second: timedelta
) -> None:
    assert cal.add(cal.add(at, first), second) == cal.add(at, first + second)
