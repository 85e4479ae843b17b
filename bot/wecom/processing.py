"""WeCom inbound processing: what the inbox hands over -> the engine, the chat reply, the cards.

`make_wecom_processor` builds the `on_event` coroutine the callback routes run from the inbox:
- a member's text message: the conversation's reply, sent back as text;
- a card-button click (`template_card_event`): the click's fresh response_code is kept for the
  card, the engine runs the button's action as the clicker (bot.handlers.clicks), and the
  notifier is kicked so every card of the ticket shows the change; a stale or refused click
  changes nothing and the clicked card is turned into the ticket's current state;
- a customer change (`change_external_contact`): `on_customer_change` (bot.wecom.customers);
- anything else is logged at DEBUG and dropped.
A reply WeCom refuses (rate limit, errors after the client's retries) is logged and dropped, not
raised: the inbox would otherwise retry the whole message and run its command a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.handlers.clicks import handle_click
from bot.handlers.conversation import Conversation
from bot.notify.notifier import Notifier
from bot.wecom.callback import InboundEvent
from bot.wecom.client import RateLimited, WeComClient, WeComError
from bot.wecom.sender import CODE_TTL, PLATFORM
from core.org import User
from core.ports import Clock, Directory
from core.service import TicketService

log = logging.getLogger("ticketbot.wecom.processing")

NOT_IN_DIRECTORY = (
    "你不在本系统的通讯录中，请联系管理员。\nYou are not in this system's directory; ask your administrator."
)
INACTIVE = "你的账号已停用，请联系管理员。\nYour account is disabled; ask your administrator."
NOT_YOUR_CARD = "这张卡片已失效或不是发给你的，请打开工单页面查看。\nThis card is out of date or not yours; open the ticket page."
CLICK_EVENT = "template_card_event"
CUSTOMER_EVENT = "change_external_contact"


def _find_user(users: list[User], wecom_userid: str) -> User | None:
    wanted = wecom_userid.casefold()
    return next((u for u in users if u.wecom_userid and u.wecom_userid.casefold() == wanted), None)


@dataclass(frozen=True, slots=True)
class WeComChat:
    conversation: Conversation
    client: WeComClient
    directory: Directory
    service: TicketService
    notifier: Notifier | None
    clock: Clock
    on_customer_change: Callable[[InboundEvent], Awaitable[None]] | None = None


def make_wecom_processor(chat: WeComChat) -> Callable[[InboundEvent], Awaitable[None]]:
    async def reply(event: InboundEvent, text: str) -> None:
        try:
            await chat.client.send_text(event.from_user, text)
        except RateLimited as exc:
            log.warning(
                "wecom reply not sent: recipient rate limit",
                extra={
                    "to": event.from_user,
                    "msg_id": event.msg_id,
                    "retry_after_s": round(exc.retry_after_seconds),
                },
            )
        except WeComError as exc:
            # not re-raised: a retry from the inbox would run the command (e.g. a create) again
            log.error(
                "wecom reply not sent",
                extra={"to": event.from_user, "msg_id": event.msg_id, "error": str(exc)},
            )

    async def known_user(event: InboundEvent) -> User | None:
        org = await chat.directory.org()
        user = _find_user(list(org.users.values()), event.from_user)
        if user is None:
            log.info("wecom message from a userid not in the directory", extra={"from_user": event.from_user})
            await reply(event, NOT_IN_DIRECTORY)
            return None
        if not user.is_active:
            log.info("wecom message from an inactive user", extra={"username": user.username})
            await reply(event, INACTIVE)
            return None
        return user

    async def on_click(event: InboundEvent) -> None:
        now = chat.clock.now()
        notifier = chat.notifier
        delivery = None
        if notifier is not None and event.task_id:
            delivery = await notifier.store.by_task_id(PLATFORM, event.task_id)
            if delivery is not None and delivery.address.casefold() != event.from_user.casefold():
                log.info(
                    "card click by someone the card was not sent to",
                    extra={"from_user": event.from_user, "task_id": event.task_id},
                )
                delivery = None
            if delivery is not None and event.response_code:  # the click's fresh single-use code
                delivery = await notifier.store.store_response_code(
                    PLATFORM, event.task_id, event.response_code, now + CODE_TTL, now
                )
        user = await known_user(event)
        if user is None:
            return
        card_ticket = delivery.ticket_id if delivery is not None else None
        result = await handle_click(
            chat.service, user.username, event.event_key, chat.conversation.link, card_ticket_id=card_ticket
        )
        reply_text = result.reply
        if result.close and delivery is None:
            reply_text = NOT_YOUR_CARD
        # a refused/stale click, or a click that worked on a card already closed (another device
        # showed it): this card is shown the ticket's current state. A live card that worked is
        # closed by the notifier's plan with every other card of the ticket.
        if (
            notifier is not None
            and delivery is not None
            and (result.close or (result.changed and not delivery.live))
        ):
            await notifier.store.request_close(delivery.id, "", now)
            notifier.kick()  # (a change to the ticket kicks it by itself)
        if reply_text:
            await reply(event, reply_text)

    async def on_event(event: InboundEvent) -> None:
        if event.msg_type == "event" and event.event == CLICK_EVENT and event.from_user:
            await on_click(event)
            return
        if event.msg_type == "event" and event.event == CUSTOMER_EVENT and chat.on_customer_change:
            await chat.on_customer_change(event)
            return
        if event.msg_type != "text" or not event.from_user:
            log.debug(
                "wecom event ignored",
                extra={"msg_type": event.msg_type, "event": event.event, "msg_id": event.msg_id},
            )
            return
        user = await known_user(event)
        if user is None:
            return
        key = f"{PLATFORM}:{event.msg_id}" if event.msg_id else ""
        text = await chat.conversation.reply_to(
            user.username, event.content, platform=PLATFORM, request_key=key
        )
        await reply(event, text)

    return on_event


__all__ = ["CLICK_EVENT", "INACTIVE", "NOT_IN_DIRECTORY", "WeComChat", "make_wecom_processor"]
