"""A click the engine refuses for a reason the person can act on (e.g. a required field the card
cannot fill) is answered with the reason and the ticket page's link signed for that person; an
out-of-date click only closes the card."""

from __future__ import annotations

from typing import Any, cast

from bot.cards.model import ActionKind, encode_action
from bot.handlers.clicks import UNKNOWN_BUTTON, handle_click
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
