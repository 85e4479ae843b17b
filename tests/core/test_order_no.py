"""Order numbers (core.order_no): the public number of a work order, and back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.order_no import MAX_TICKET_ID, ORDER_NO_BASE, order_no, ticket_id_of


def test_order_no_of_a_ticket_and_back() -> None:
    assert order_no(1) == "1470000000000000001"
    assert order_no(12345) == "1470000000000012345"
    assert ticket_id_of("1470000000000000001") == 1
    assert ticket_id_of(order_no(MAX_TICKET_ID)) == MAX_TICKET_ID


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "1",
        "12",
        "1470000000000000000",  # ticket 0
        "1469999999999999999",
        "01470000000000000001",
        " 1470000000000000001",
        "1470000000000000001 ",
        "+1470000000000000001",
        "1470000000000000001.0",
        "１４７００００００００００００００００１",  # full-width digits
        "14700000000000000001470",
        str(ORDER_NO_BASE + MAX_TICKET_ID + 1),
        "abc",
    ],
)
def test_malformed_order_numbers_name_no_ticket(bad: str) -> None:
    assert ticket_id_of(bad) is None


def test_non_strings_name_no_ticket() -> None:
    assert ticket_id_of(1470000000000000001) is None  # type: ignore[arg-type]
    assert ticket_id_of(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, MAX_TICKET_ID + 1, True, 1.0])
def test_order_no_refuses_what_is_no_ticket_id(bad: object) -> None:
    with pytest.raises(ValueError, match="not a ticket id"):
        order_no(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=1, max_value=MAX_TICKET_ID))
def test_round_trip(ticket_id: int) -> None:
    assert ticket_id_of(order_no(ticket_id)) == ticket_id


@given(st.text(max_size=25))
def test_ticket_id_of_is_total(text: str) -> None:
    got = ticket_id_of(text)
    assert got is None or order_no(got) == text
