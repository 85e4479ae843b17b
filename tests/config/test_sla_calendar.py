"""Per-state `sla` in workflow files and the optional calendar.yaml: read, and located errors."""

from __future__ import annotations

import shutil
from datetime import date, time, timedelta
from pathlib import Path

import pytest

from config.calendar import duration, read_calendar
from config.errors import ConfigError
from config.loader import check_config, load_config
from config.workflows import load_workflow_file
from core.calendar import BusinessCalendar
from core.workflow import Sla
from tests.config.test_workflow_errors import ORG, TRANSITIONS, errors_of

CONFIG = Path(__file__).resolve().parents[2] / "config"
H = timedelta(hours=1)


def states(sla: str, *, on_end: str = "") -> str:
    return (
        "  - {id: 1, name: 新建, type: start}\n"
        f"  - {{id: 2, name: 审批, participant: {{type: person, value: alice}}, sla: {sla}}}\n"
        f"  - {{id: 3, name: 结束, type: end{on_end}}}\n"
    )


def wf_text(sla: str, *, on_end: str = "") -> str:
    return f"id: 7\nname: 测试\nstates:\n{states(sla, on_end=on_end)}transitions:\n{TRANSITIONS}"


def test_an_sla_is_read_with_its_durations(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    sla = "{remind_after: 30m, remind_every: 1h30m, urge_after: 4h, escalate_after: 2d, business_hours: true}"
    path.write_text(wf_text(sla), encoding="utf-8")
    wf = load_workflow_file(path, ORG, env={})
    state = wf.state(2)
    assert state is not None and state.sla == Sla(
        remind_after=timedelta(minutes=30),
        urge_after=4 * H,
        escalate_after=timedelta(days=2),
        business_hours=True,
        remind_every=timedelta(minutes=90),
    )
    assert wf.state(1) is not None and wf.state(1).sla is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("sla", "expected"),
    [
        ("{urge_after: 4x}", "bad.yaml: states[1].sla.urge_after: '4x' is not a duration (e.g. 30m, 4h, 2d)"),
        (
            "{remind_after: 0}",
            "bad.yaml: states[1].sla.remind_after: integer 0 is not a duration (e.g. 30m, 4h, 2d)",
        ),
        ("{remind_after: true}", "bad.yaml: states[1].sla.remind_after: boolean true is not a duration"),
        ("{business_hours: true}", "bad.yaml: states[1].sla: give at least one of remind_after, urge_after"),
        (
            "{remind_every: 1h, urge_after: 2h}",
            "bad.yaml: states[1].sla.remind_every: repeats a reminder: needs",
        ),
        ("{urge_afer: 1h}", "bad.yaml: states[1].sla.urge_afer: unknown key (did you mean 'urge_after'?)"),
        (
            "{urge_after: 1h, business_hours: 1}",
            "bad.yaml: states[1].sla.business_hours: expected true or false",
        ),
        ("4h", "bad.yaml: states[1].sla: expected a mapping, got string '4h'"),
    ],
)
def test_a_wrong_sla_is_located(tmp_path: Path, sla: str, expected: str) -> None:
    errors = errors_of(tmp_path, wf_text(sla))
    assert any(e.startswith(expected) for e in errors), errors


def test_an_end_state_has_no_sla(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, wf_text("{urge_after: 1h}", on_end=", sla: {urge_after: 1h}"))
    assert errors == ["bad.yaml: states[2].sla: an end state has no SLA (nobody waits there)"]


def test_durations() -> None:
    assert duration("30m") == timedelta(minutes=30)
    assert duration("1d4h") == timedelta(days=1, hours=4)
    assert duration("90") == duration(90) == timedelta(seconds=90)
    assert duration("2 d") == timedelta(days=2)
    for bad in ("", "4x", "-1h", "h", 0, -5, 1.5, None, "1h 30"):
        assert duration(bad) is None, bad


# --- calendar.yaml ----------------------------------------------------------------------------------


def calendar_dir(tmp_path: Path, text: str | None) -> Path:
    if text is not None:
        (tmp_path / "calendar.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_no_calendar_file_is_the_default(tmp_path: Path) -> None:
    assert read_calendar(calendar_dir(tmp_path, None)) == (BusinessCalendar(), [])


def test_a_calendar_file_is_read(tmp_path: Path) -> None:
    text = """\
timezone: "-05:30"
days: [mon, wed, Friday]
hours: "08:30-17:00"
holidays: [2026-10-01, 2026-10-02]
workdays: [2026-10-10]
"""
    cal, errors = read_calendar(calendar_dir(tmp_path, text))
    assert errors == []
    assert cal == BusinessCalendar(
        offset=-timedelta(hours=5, minutes=30),
        days=frozenset({0, 2, 4}),
        start=time(8, 30),
        end=time(17),
        holidays=frozenset({date(2026, 10, 1), date(2026, 10, 2)}),
        workdays=frozenset({date(2026, 10, 10)}),
    )


def test_calendar_errors_are_located(tmp_path: Path) -> None:
    text = """\
timezone: Asia/Shanghai
days: [mon, funday]
hours: "18:00-09:00"
holidays: [2026-13-01, 20261001]
workdays: [2026-10-10]
weekends: [sat]
"""
    _, errors = read_calendar(calendar_dir(tmp_path, text))
    assert errors == [
        "calendar.yaml: weekends: unknown key; allowed keys: timezone, days, hours, holidays, workdays",
        "calendar.yaml: timezone: expected a UTC offset like '+08:00', got string 'Asia/Shanghai'",
        "calendar.yaml: days[1]: expected a weekday (mon, tue, wed, thu, fri, sat, sun), got string 'funday'",
        "calendar.yaml: hours: '18:00-09:00' is not a span of one day's hours (start before end, 00:00-23:59)",
        "calendar.yaml: holidays[0]: expected a date like 2026-10-01, got string '2026-13-01'",
        "calendar.yaml: holidays[1]: expected a date like 2026-10-01, got integer 20261001",
    ]


def test_the_loader_carries_the_calendar_and_check_reports_its_errors(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (config / "calendar.yaml").write_text('hours: "10:00-16:00"\n', encoding="utf-8")
    assert load_config(config, env={}).calendar == BusinessCalendar(start=time(10), end=time(16))
    (config / "calendar.yaml").write_text("days: []\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(config, env={})
    assert info.value.errors == ["calendar.yaml: days: must list at least one working weekday"]
    ok, text = check_config(config, env={})
    assert not ok and "calendar.yaml: days" in text


def test_the_shipped_leave_workflow_has_a_business_hours_sla() -> None:
    cfg = load_config(CONFIG, env={})
    leave = cfg.workflow(1)
    assert leave is not None
    state = leave.state(102)
    assert state is not None and state.sla == Sla(
        remind_after=4 * H, urge_after=9 * H, escalate_after=18 * H, business_hours=True
    )
    assert cfg.calendar == BusinessCalendar()
