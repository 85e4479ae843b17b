"""A card-button click -> the engine, as the person who clicked. Platform-neutral.

The button key (bot.cards.model) only says which ticket, state and action the card offered; the
engine decides whether the clicker may do it now. The click carries the state the card was made
for (`expected_state_id`), so a click on a card the ticket has left changes nothing and comes back
as AlreadyHandled ("already approved by X at T").

What the caller does with a `ClickResult`:
- `changed`: the ticket moved; the notifier updates every card (this one included);
- `close`: nothing changed, but this card is out of date: show the ticket's current state on it;
- `reply`: a text for the clicker (a refusal they can act on, e.g. a field the card can't fill).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.cards.model import decode_action
from core import commands as core
from core.access import ActionKind
from core.errors import Reason
from core.service import AlreadyHandled, Done, TicketService

log = logging.getLogger("ticketbot.clicks")

# refusals that mean "this card is no longer yours to act on": show the current state on it
_OUT_OF_DATE = frozenset(
    {
        Reason.NOT_PARTICIPANT,
        Reason.NO_PERMISSION,
        Reason.BAD_STATE,
        Reason.TICKET_ENDED,
        Reason.ALREADY_VOTED,
        Reason.STALE,
        Reason.NOT_FOUND,
        Reason.MUST_ACCEPT,
        Reason.IN_ADD_NODE,
    }
)


@dataclass(frozen=True, slots=True)
class ClickResult:
    ticket_id: int
    changed: bool = False
    close: bool = False
    reply: str = ""


UNKNOWN_BUTTON = (
    "这个按钮已失效，请打开工单页面处理。\nThis button is no longer valid; open the ticket page instead."
)


def command_for(username: str, key: str) -> tuple[int, core.Command] | None:
    """The engine command behind a button key, run as `username`; None for a key we didn't make."""
    action = decode_action(key)
    if action is None:
        return None
    if action.action == ActionKind.TRANSITION:
        return action.ticket_id, core.Handle(
            username, action.transition_id, expected_state_id=action.state_id
        )
    if action.action == ActionKind.ACCEPT:
        return action.ticket_id, core.Accept(username, expected_state_id=action.state_id)
    if action.action == ActionKind.ADD_NODE_END:
        return action.ticket_id, core.AddNodeEnd(username)
    return None  # other actions need input and are never put on a card


async def handle_click(
    service: TicketService,
    username: str,
    key: str,
    link_for: Callable[[int, str], str],
    *,
    card_ticket_id: int | None = None,
) -> ClickResult:
    """Run the button `key` as `username`; `link_for(ticket_id, username)` gives the ticket page's
    link (signed for them) for a refusal they can finish on the page. `card_ticket_id`: the ticket
    of the card clicked, when we know which card it was; a key naming another ticket was not made
    for that card (an edited payload) and runs nothing."""
    found = command_for(username, key)
    if found is None:
        log.info("card click with a key that is not ours", extra={"username": username, "key": key[:80]})
        return ClickResult(0, reply=UNKNOWN_BUTTON)
    ticket_id, command = found
    if card_ticket_id is not None and ticket_id != card_ticket_id:
        log.warning(
            "card click refused: its key names another ticket than the card clicked",
            extra={"username": username, "card_ticket_id": card_ticket_id, "key_ticket_id": ticket_id},
        )
        return ClickResult(0, reply=UNKNOWN_BUTTON)
    result = await service.execute(ticket_id, command)
    if isinstance(result, Done):
        log.info("card click applied", extra={"ticket_id": ticket_id, "username": username, "key": key})
        return ClickResult(ticket_id, changed=True)
    if isinstance(result, AlreadyHandled):
        log.info(
            "stale card click: nothing changed",
            extra={"ticket_id": ticket_id, "username": username, "by": result.by},
        )
        return ClickResult(ticket_id, close=True)
    log.info(
        "card click refused",
        extra={"ticket_id": ticket_id, "username": username, "reason": result.reason.value},
    )
    if result.reason in _OUT_OF_DATE:
        return ClickResult(ticket_id, close=True)
    link = link_for(ticket_id, username)
    return ClickResult(
        ticket_id,
        reply=f"未执行：{result.message}\n请在工单页面处理 / Please finish it on the ticket page: {link}",
    )
