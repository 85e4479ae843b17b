"""Custom-field values: coercion to the canonical form and refusals with clear messages."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from core.fields import FieldValueError, coerce, coerce_all
from core.org import Org, User
from core.workflow import CustomField, FieldType

CHOICES = {"sick": "Sick leave", "annual": "Annual leave", "1": "One"}
ORG = Org.build([User("alice"), User("bob"), User("carol", is_active=False)])


def fd(ftype: FieldType, key: str = "f", name: str = "F") -> CustomField:
    return CustomField(key=key, name=name, type=ftype, choices=CHOICES)


@pytest.mark.parametrize(
    ("ftype", "raw", "expected"),
    [
        # text
        (FieldType.STRING, "hello", "hello"),
        (FieldType.STRING, "", ""),
        (FieldType.STRING, "  keep spaces ", "  keep spaces "),
        (FieldType.STRING, 3, "3"),
        (FieldType.STRING, 2.5, "2.5"),
        (FieldType.STRING, "x" * 10_000, "x" * 10_000),
        (FieldType.TEXTAREA, "a\nb", "a\nb"),
        (FieldType.TEXTAREA, "x" * 100_000, "x" * 100_000),
        (FieldType.RICH_TEXT, "<b>x</b>", "<b>x</b>"),
        (FieldType.RICH_TEXT, 7, "7"),
        # int
        (FieldType.INT, 3, 3),
        (FieldType.INT, -3, -3),
        (FieldType.INT, 0, 0),
        (FieldType.INT, "3", 3),
        (FieldType.INT, " 3 ", 3),
        (FieldType.INT, "-12", -12),
        (FieldType.INT, "+7", 7),
        (FieldType.INT, 4.0, 4),
        (FieldType.INT, 10**30, 10**30),
        # float
        (FieldType.FLOAT, 2.5, 2.5),
        (FieldType.FLOAT, 2, 2.0),
        (FieldType.FLOAT, "2.5", 2.5),
        (FieldType.FLOAT, " -1e3 ", -1000.0),
        (FieldType.FLOAT, ".5", 0.5),
        (FieldType.FLOAT, "3", 3.0),
        # bool
        (FieldType.BOOL, True, True),
        (FieldType.BOOL, False, False),
        (FieldType.BOOL, 1, True),
        (FieldType.BOOL, 0, False),
        (FieldType.BOOL, "1", True),
        (FieldType.BOOL, "0", False),
        (FieldType.BOOL, "true", True),
        (FieldType.BOOL, "TRUE", True),
        (FieldType.BOOL, " False ", False),
        # date
        (FieldType.DATE, "2024-05-31", "2024-05-31"),
        (FieldType.DATE, " 2024-05-31 ", "2024-05-31"),
        (FieldType.DATE, "20240531", "2024-05-31"),
        (FieldType.DATE, dt.date(2024, 2, 29), "2024-02-29"),
        # datetime
        (FieldType.DATETIME, "2024-05-31 14:30:00", "2024-05-31 14:30:00"),
        (FieldType.DATETIME, "2024-05-31T14:30:00", "2024-05-31 14:30:00"),
        (FieldType.DATETIME, "2024-05-31T14:30", "2024-05-31 14:30:00"),
        (FieldType.DATETIME, "2024-05-31 14:30", "2024-05-31 14:30:00"),
        (FieldType.DATETIME, "2024-05-31T14:30:05.123456", "2024-05-31 14:30:05"),
        (FieldType.DATETIME, " 2024-05-31 08:00:00 ", "2024-05-31 08:00:00"),
        (FieldType.DATETIME, dt.datetime(2024, 5, 31, 1, 2, 3, 999), "2024-05-31 01:02:03"),
        # single choice
        (FieldType.RADIO, "sick", "sick"),
        (FieldType.SELECT, "annual", "annual"),
        (FieldType.SELECT, " annual ", "annual"),
        (FieldType.RADIO, 1, "1"),
        # multiple choices
        (FieldType.CHECKBOX, ["sick", "annual"], ["sick", "annual"]),
        (FieldType.CHECKBOX, ("annual",), ["annual"]),
        (FieldType.CHECKBOX, [], []),
        (FieldType.MULTI_SELECT, "sick,annual", ["sick", "annual"]),
        (FieldType.MULTI_SELECT, " sick , annual ,", ["sick", "annual"]),
        (FieldType.MULTI_SELECT, "", []),
        (FieldType.MULTI_SELECT, ["annual", "sick", "annual"], ["annual", "sick"]),
        (FieldType.MULTI_SELECT, [1, "sick"], ["1", "sick"]),
        # users (no org: any username)
        (FieldType.USER, "alice", "alice"),
        (FieldType.USER, " alice ", "alice"),
        (FieldType.USER, "ghost", "ghost"),
        (FieldType.MULTI_USER, ["alice", "bob"], ["alice", "bob"]),
        (FieldType.MULTI_USER, "alice, bob,alice", ["alice", "bob"]),
        (FieldType.MULTI_USER, "", []),
        # attachments
        (FieldType.ATTACHMENT, "https://x/y.pdf", ["https://x/y.pdf"]),
        (FieldType.ATTACHMENT, "https://x/a,b.pdf", ["https://x/a,b.pdf"]),  # never split
        (FieldType.ATTACHMENT, ["a.png", "b.png", "a.png"], ["a.png", "b.png"]),
        (FieldType.ATTACHMENT, [], []),
        (FieldType.ATTACHMENT, ["x" * 2000], ["x" * 2000]),
    ],
)
def test_coerce_ok(ftype: FieldType, raw: Any, expected: Any) -> None:
    value = coerce(fd(ftype), raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("ftype", list(FieldType))
def test_none_is_none(ftype: FieldType) -> None:
    assert coerce(fd(ftype), None) is None
    assert coerce(fd(ftype), None, ORG) is None


@pytest.mark.parametrize(
    ("ftype", "raw", "fragment"),
    [
        # text
        (FieldType.STRING, {"a": 1}, "expects text, got {'a': 1}"),
        (FieldType.STRING, ["a"], "expects text"),
        (FieldType.STRING, True, "expects text, got True"),
        (FieldType.STRING, "x" * 10_001, "is too long (10001 characters, at most 10,000)"),
        (FieldType.TEXTAREA, "x" * 100_001, "at most 100,000"),
        (FieldType.RICH_TEXT, b"x", "expects text"),
        # int
        (FieldType.INT, "abc", "expects an integer, got 'abc'"),
        (FieldType.INT, True, "expects an integer, got True"),
        (FieldType.INT, False, "expects an integer"),
        (FieldType.INT, 2.5, "expects an integer, got 2.5"),
        (FieldType.INT, "2.5", "expects an integer"),
        (FieldType.INT, "", "expects an integer"),
        (FieldType.INT, "1_000", "expects an integer"),
        (FieldType.INT, "٣", "expects an integer"),  # non-ASCII digits
        (FieldType.INT, math.nan, "expects an integer"),
        (FieldType.INT, math.inf, "expects an integer"),
        (FieldType.INT, "9" * 5000, "expects an integer"),
        (FieldType.INT, [1], "expects an integer"),
        # float
        (FieldType.FLOAT, True, "expects a finite number, got True"),
        (FieldType.FLOAT, math.nan, "expects a finite number"),
        (FieldType.FLOAT, math.inf, "expects a finite number"),
        (FieldType.FLOAT, -math.inf, "expects a finite number"),
        (FieldType.FLOAT, "nan", "expects a finite number"),
        (FieldType.FLOAT, "inf", "expects a finite number"),
        (FieldType.FLOAT, "1e999", "expects a finite number"),
        (FieldType.FLOAT, 10**400, "expects a finite number"),
        (FieldType.FLOAT, "abc", "expects a finite number"),
        (FieldType.FLOAT, {}, "expects a finite number"),
        # bool
        (FieldType.BOOL, 2, "expects a boolean"),
        (FieldType.BOOL, "yes", "expects a boolean"),
        (FieldType.BOOL, "", "expects a boolean"),
        (FieldType.BOOL, 1.0, "expects a boolean"),
        (FieldType.BOOL, [], "expects a boolean"),
        # date
        (FieldType.DATE, "2024-02-30", "expects a date such as 2024-05-31, got '2024-02-30'"),
        (FieldType.DATE, "31/05/2024", "expects a date"),
        (FieldType.DATE, "yesterday", "expects a date"),
        (FieldType.DATE, 20240531, "expects a date"),
        (FieldType.DATE, dt.datetime(2024, 5, 31, 1, 0), "expects a date"),
        # datetime
        (FieldType.DATETIME, "2024-05-31", "expects a date and time"),
        (FieldType.DATETIME, "2024-05-31 25:00:00", "expects a date and time"),
        (FieldType.DATETIME, "2024-13-01 10:00:00", "expects a date and time"),
        (FieldType.DATETIME, "2024-05-31T10:00:00Z", "without a time zone"),
        (FieldType.DATETIME, "2024-05-31T10:00:00+08:00", "without a time zone"),
        (FieldType.DATETIME, dt.datetime(2024, 5, 31, tzinfo=dt.UTC), "without a time zone"),
        (FieldType.DATETIME, "2024-05-31 10", "expects a date and time"),
        (FieldType.DATETIME, 1717000000, "expects a date and time"),
        # choices
        (FieldType.RADIO, "other", "expects one of 'sick', 'annual', '1', got 'other'"),
        (FieldType.SELECT, "Sick leave", "expects one of"),  # a label is not a key
        (FieldType.SELECT, True, "expects one of"),
        (FieldType.SELECT, 2, "got 2"),
        (FieldType.SELECT, ["sick"], "expects one of"),
        (FieldType.CHECKBOX, ["sick", "other"], "got 'other' in ['sick', 'other']"),
        (FieldType.CHECKBOX, "sick,other", "got 'other' in 'sick,other'"),
        (FieldType.MULTI_SELECT, 5, "expects a list of choices"),
        (FieldType.MULTI_SELECT, [["sick"]], "expects one of"),
        # users
        (FieldType.USER, "", "expects a username, got ''"),
        (FieldType.USER, "   ", "expects a username"),
        (FieldType.USER, 5, "expects a username, got 5"),
        (FieldType.USER, ["alice"], "expects a username"),
        (FieldType.MULTI_USER, ["alice", 3], "expects a username, got 3 in ['alice', 3]"),
        (FieldType.MULTI_USER, 3, "expects a list of usernames"),
        # attachments
        (FieldType.ATTACHMENT, 5, "expects a URL or path, or a list of them, got 5"),
        (FieldType.ATTACHMENT, "", "non-empty URL or path, got ''"),
        (FieldType.ATTACHMENT, ["a.png", ""], "non-empty URL or path"),
        (FieldType.ATTACHMENT, ["a.png", 3], "non-empty URL or path, got 3"),
        (FieldType.ATTACHMENT, ["x" * 2001], "longer than 2,000 characters"),
        (FieldType.ATTACHMENT, {"url": "x"}, "expects a URL or path"),
    ],
)
def test_coerce_refuses(ftype: FieldType, raw: Any, fragment: str) -> None:
    field = fd(ftype, key="days", name="Days")
    with pytest.raises(FieldValueError) as info:
        coerce(field, raw)
    err = info.value
    assert err.key == "days"
    assert err.message == str(err)
    assert err.message.startswith("field 'Days' (days) ")
    assert fragment in err.message
    assert len(err.message) < 300


def test_example_message() -> None:
    with pytest.raises(FieldValueError) as info:
        coerce(fd(FieldType.INT, key="days", name="Days"), "abc")
    assert info.value.message == "field 'Days' (days) expects an integer, got 'abc'"


@pytest.mark.parametrize("raw", ["x" * 10_000, ["y" * 10_000], {"k": "z" * 10_000}])
def test_bad_value_echo_is_short(raw: Any) -> None:
    with pytest.raises(FieldValueError) as info:
        coerce(fd(FieldType.INT), raw)
    shown = info.value.message.split(", got ", 1)[1]
    assert len(shown) <= 80
    assert shown.endswith("...")


def test_choice_without_choices() -> None:
    field = CustomField(key="k", name="K", type=FieldType.SELECT)
    with pytest.raises(FieldValueError, match="defines none"):
        coerce(field, "a")


def test_many_choices_are_abbreviated() -> None:
    field = CustomField(key="k", name="K", type=FieldType.SELECT, choices={str(i): str(i) for i in range(30)})
    with pytest.raises(FieldValueError) as info:
        coerce(field, "x")
    assert "(and 20 more)" in info.value.message


@pytest.mark.parametrize(
    ("ftype", "raw", "expected"),
    [
        (FieldType.USER, "alice", "alice"),
        (FieldType.MULTI_USER, ["alice", "bob"], ["alice", "bob"]),
        (FieldType.MULTI_USER, "bob,alice", ["bob", "alice"]),
    ],
)
def test_users_with_org(ftype: FieldType, raw: Any, expected: Any) -> None:
    assert coerce(fd(ftype), raw, ORG) == expected


@pytest.mark.parametrize(
    ("ftype", "raw", "fragment"),
    [
        (FieldType.USER, "ghost", "expects an active user, but 'ghost' is not a known user"),
        (FieldType.USER, "carol", "expects an active user, but 'carol' is not an active user"),
        (FieldType.MULTI_USER, ["alice", "ghost"], "'ghost' is not a known user"),
        (FieldType.MULTI_USER, "alice,carol", "'carol' is not an active user"),
    ],
)
def test_users_with_org_refused(ftype: FieldType, raw: Any, fragment: str) -> None:
    with pytest.raises(FieldValueError) as info:
        coerce(fd(ftype, key="who", name="Who"), raw, ORG)
    assert info.value.key == "who"
    assert info.value.message.startswith("field 'Who' (who) ")
    assert fragment in info.value.message


def test_unsupported_type() -> None:
    field = CustomField(key="k", name="K", type=99)  # type: ignore[arg-type]
    with pytest.raises(FieldValueError, match="unsupported type"):
        coerce(field, "x")


def test_plain_int_type_works() -> None:
    field = CustomField(key="k", name="K", type=10)  # type: ignore[arg-type]  # loonflow's field_type_id
    assert coerce(field, "4") == 4


# --- coerce_all ---------------------------------------------------------------------------------------

DEFS = {
    "days": CustomField(key="days", name="Days", type=FieldType.INT),
    "reason": CustomField(key="reason", name="Reason", type=FieldType.STRING),
    "kind": CustomField(key="kind", name="Kind", type=FieldType.SELECT, choices=CHOICES),
    "who": CustomField(key="who", name="Who", type=FieldType.USER),
}


def test_coerce_all() -> None:
    raw = {"days": "3", "reason": "flu", "kind": "sick", "who": None}
    out = coerce_all(DEFS, raw)
    assert out == {"days": 3, "reason": "flu", "kind": "sick", "who": None}
    assert out is not raw
    assert raw["days"] == "3"  # the input is untouched


def test_coerce_all_empty() -> None:
    assert coerce_all(DEFS, {}) == {}


def test_coerce_all_unknown_key() -> None:
    with pytest.raises(FieldValueError) as info:
        coerce_all(DEFS, {"days": 1, "dayz": 2})
    assert info.value.key == "dayz"
    assert info.value.message == "unknown field 'dayz'"


def test_coerce_all_bad_value() -> None:
    with pytest.raises(FieldValueError) as info:
        coerce_all(DEFS, {"reason": "ok", "days": "many"})
    assert info.value.key == "days"
    assert info.value.message == "field 'Days' (days) expects an integer, got 'many'"


def test_coerce_all_checks_users_against_org() -> None:
    assert coerce_all(DEFS, {"who": "alice"}, ORG) == {"who": "alice"}
    with pytest.raises(FieldValueError, match="not a known user"):
        coerce_all(DEFS, {"who": "ghost"}, ORG)


@pytest.mark.parametrize(
    ("ftype", "raw"),
    [
        (FieldType.INT, "3"),
        (FieldType.FLOAT, "2.5"),
        (FieldType.BOOL, "true"),
        (FieldType.DATE, "20240531"),
        (FieldType.DATETIME, "2024-05-31T14:30"),
        (FieldType.SELECT, 1),
        (FieldType.MULTI_SELECT, "sick,annual,sick"),
        (FieldType.MULTI_USER, "alice, bob"),
        (FieldType.ATTACHMENT, "a.png"),
    ],
)
def test_coerce_is_idempotent(ftype: FieldType, raw: Any) -> None:
    """A canonical value coerces to itself, so clients may echo stored values back unchanged."""
    once = coerce(fd(ftype), raw, ORG)
    assert coerce(fd(ftype), once, ORG) == once
