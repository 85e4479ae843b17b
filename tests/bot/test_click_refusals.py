"""A click the engine refuses for a reason the person can act on (e.g. a required field the card
cannot fill) is answered with the reason and the ticket page's link signed for that person; an
out-of-date click only closes the card."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from bot.cards.model import encode_action
from bot.handlers.clicks import UNKNOWN_BUTTON, handle_click
from core.access import ActionKind
from core.errors import Reason, Rejected


class RefusingService:
    def __init__(self, reason: Reason) -> None:
        self.reason = reason
        self.calls: list[tuple[int, Any]] = []

    async def execute(self, ticket_id: int, command: Any) -> Rejected:
        self.calls.append((ticket_id, command))
        return Rejected(self.reason, "字段 reason 必填")


def _link(ticket_id: int, username: str) -> str:
    return f"https://bot.example.com/tickets/{ticket_id}?u={username}&e=1&s=sig"


KEY = encode_action(7, 102, ActionKind.TRANSITION, 3, "n1")


async def test_a_refusal_the_person_can_fix_links_the_page_signed_for_them() -> None:
    service = RefusingService(Reason.MISSING_FIELD)
    result = await handle_click(cast(Any, service), "wangqiang", KEY, _link)
    assert service.calls and service.calls[0][0] == 7
    assert not result.changed and not result.close
    assert "字段 reason 必填" in result.reply
    assert result.reply.endswith("https://bot.example.com/tickets/7?u=wangqiang&e=1&s=sig")


async def test_an_out_of_date_click_closes_the_card_without_a_reply() -> None:
    result = await handle_click(cast(Any, RefusingService(Reason.STALE)), "wangqiang", KEY, _link)
    assert result.close and not result.reply


async def test_a_key_that_is_not_ours_runs_nothing() -> None:
    service = RefusingService(Reason.STALE)
    result = await handle_click(cast(Any, service), "wangqiang", "rm -rf", _link)
    assert result.reply == UNKNOWN_BUTTON and not service.calls


async def test_a_key_edited_to_another_ticket_than_the_card_runs_nothing_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = RefusingService(Reason.NOT_PARTICIPANT)
    with caplog.at_level(logging.INFO, logger="ticketbot.clicks"):
        result = await handle_click(cast(Any, service), "wangqiang", KEY, _link, card_ticket_id=8)
    assert result.reply == UNKNOWN_BUTTON and not result.close and not result.changed
    assert not service.calls
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "card click refused: its key names another ticket than the card clicked"
    fields = record.__dict__
    assert (fields["card_ticket_id"], fields["key_ticket_id"], fields["username"]) == (8, 7, "wangqiang")


async def test_the_cards_own_ticket_runs_and_each_refusal_is_logged_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for reason in (Reason.NOT_PARTICIPANT, Reason.BAD_STATE, Reason.STALE):
        caplog.clear()
        service = RefusingService(reason)
        with caplog.at_level(logging.INFO, logger="ticketbot.clicks"):
            result = await handle_click(cast(Any, service), "stranger", KEY, _link, card_ticket_id=7)
        assert service.calls and result.close  # out of date for this person: the card shows the state
        [record] = caplog.records
        assert record.getMessage() == "card click refused"
        fields = record.__dict__
        assert (fields["ticket_id"], fields["username"], fields["reason"]) == (7, "stranger", reason.value)


async def test_a_transition_edited_in_the_key_is_the_engines_to_refuse() -> None:
    """A key edited to another transition of the same ticket reaches the engine as that transition
    with the state the card was made for; the engine checks both (tests/core: decide)."""
    service = RefusingService(Reason.BAD_STATE)
    edited = encode_action(7, 102, ActionKind.TRANSITION, 999, "n1")
    result = await handle_click(cast(Any, service), "wangqiang", edited, _link, card_ticket_id=7)
    [(ticket_id, command)] = service.calls
    assert ticket_id == 7 and command.transition_id == 999 and command.expected_state_id == 102
    assert result.close
