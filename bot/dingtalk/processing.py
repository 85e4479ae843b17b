"""DingTalk inbound processing: what the inbox hands over -> the engine, the chat reply, the cards.

- a robot message from a member: the conversation's reply (platform-neutral, as on WeCom), sent
  through the message's session webhook while it is valid, else by the robot's batch send;
- a card click: the button's action runs on the engine as the clicker (bot.handlers.clicks); a
  stale or refused click gets the clicked card shown the ticket's current state; the notifier
  updates every card of a ticket that changed;
- an event of the subscription: logged (directory changes are picked up by the org sync).
A reply DingTalk refuses is logged and dropped, not raised: the inbox would otherwise run the
command (e.g. a create) again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.cards.dingtalk import render_dingtalk_update
from bot.dingtalk.answers import ClickAnswers
from bot.dingtalk.card_callback import CardClick
from bot.dingtalk.client import DingTalkClient, DingTalkError
from bot.dingtalk.events import DingTalkEvent
from bot.dingtalk.robot import RobotMessage
from bot.dingtalk.sender import PLATFORM
from bot.handlers.clicks import handle_click
from bot.handlers.conversation import Conversation
from bot.notify.notifier import Notifier
from core.org import User
from core.ports import Clock, Directory
from core.service import TicketService

log = logging.getLogger("ticketbot.dingtalk.processing")

NOT_IN_DIRECTORY = (
    "你不在本系统的通讯录中，请联系管理员。\nYou are not in this system's directory; ask your administrator."
)
INACTIVE = "你的账号已停用，请联系管理员。\nYour account is disabled; ask your administrator."
NOT_YOUR_CARD = "这张卡片已失效或不是发给你的，请打开工单页面查看。\nThis card is out of date or not yours; open the ticket page."
NOT_TEXT = (
    "目前只能处理文字消息，发送“帮助”查看用法。\nOnly text messages are understood; send 'help' to see how."
)


def find_user(users: list[User], staff_id: str) -> User | None:
    return next((u for u in users if u.dingtalk_staff_id and u.dingtalk_staff_id == staff_id), None)


@dataclass(frozen=True, slots=True)
class DingTalkChat:
    conversation: Conversation
    client: DingTalkClient
    directory: Directory
    service: TicketService
    notifier: Notifier | None
    clock: Clock
    answers: ClickAnswers | None = None


def make_dingtalk_processor(
    chat: DingTalkChat,
) -> Callable[[DingTalkEvent | RobotMessage | CardClick], Awaitable[None]]:
    async def send(staff_id: str, text: str, message: RobotMessage | None = None) -> None:
        now_ms = int(chat.clock.now().timestamp() * 1000)
        try:
            # a group's webhook posts to everyone in it: replies about one's tickets go privately
            if message is not None and not message.is_group and message.can_reply_by_webhook(now_ms):
                await chat.client.send_session_webhook(message.session_webhook, text)
            else:
                await chat.client.robot_batch_send([staff_id], "sampleText", {"content": text})
        except DingTalkError as exc:
            log.error("dingtalk reply not sent", extra={"to": staff_id, "error": str(exc)})

    async def member(staff_id: str, message: RobotMessage | None = None) -> User | None:
        org = await chat.directory.org()
        user = find_user(list(org.users.values()), staff_id)
        if user is None:
            log.info("dingtalk message from a staff id not in the directory", extra={"staff_id": staff_id})
            await send(staff_id, NOT_IN_DIRECTORY, message)
            return None
        if not user.is_active:
            await send(staff_id, INACTIVE, message)
            return None
        return user

    async def on_message(message: RobotMessage) -> None:
        staff_id = message.sender_staff_id
        if not staff_id:
            log.info("dingtalk message without a sender staff id", extra={"msg_id": message.msg_id})
            return
        user = await member(staff_id, message)
        if user is None:
            return
        if not message.text.strip():
            await send(staff_id, NOT_TEXT, message)
            return
        key = f"{PLATFORM}:{message.msg_id}" if message.msg_id else ""
        reply = await chat.conversation.reply_to(
            user.username, message.text, platform=PLATFORM, request_key=key
        )
        await send(staff_id, reply, message)

    async def on_click(click: CardClick) -> None:
        now = chat.clock.now()
        notifier = chat.notifier
        delivery = None
        if notifier is not None:
            delivery = await notifier.store.by_task_id(PLATFORM, click.out_track_id)
            if delivery is not None and delivery.address != click.user_id:
                log.info("card click by someone the card was not sent to", extra={"user_id": click.user_id})
                delivery = None
        user = await member(click.user_id)
        if user is None:
            return
        held = notifier is not None and delivery is not None
        if notifier is not None and delivery is not None:
            notifier.hold(delivery.id)  # the answer to this click may carry the card's new state
        answered = False
        try:
            result = await handle_click(
                chat.service,
                user.username,
                click.action_key,
                chat.conversation.link,
                card_ticket_id=delivery.ticket_id if delivery is not None else None,
            )
            if notifier is not None and delivery is not None and (result.close or result.changed):
                answered = await answer(click, delivery.id, notifier)
            needs_close = result.close or (result.changed and delivery is not None and not delivery.live)
            if notifier is not None and delivery is not None and not answered and needs_close:
                await notifier.store.request_close(delivery.id, "", now)
                notifier.kick()
        finally:
            if not answered:
                if chat.answers is not None:
                    chat.answers.decline(click.dedupe_key)
                if held and notifier is not None and delivery is not None:
                    notifier.release(delivery.id)
        reply_text = NOT_YOUR_CARD if result.close and delivery is None else result.reply
        if reply_text:
            await send(click.user_id, reply_text)

    async def answer(click: CardClick, delivery_id: int, notifier: Notifier) -> bool:
        """Offer the waiting HTTP answer the clicked card's new state. True if it was taken: the
        route then confirms whether DingTalk got it in time (the card is closed) or not (the
        notifier updates it), and releases the card for the notifier."""
        if chat.answers is None:
            return False
        delivery = await notifier.store.by_task_id(PLATFORM, click.out_track_id)
        card = await notifier.result_card(delivery) if delivery is not None else None
        if card is None:
            return False

        async def confirm(ok: bool) -> None:
            try:
                if ok:
                    await notifier.store.mark_closed(delivery_id, chat.clock.now())
                else:
                    await notifier.store.request_close(delivery_id, "", chat.clock.now())
                    notifier.kick()
            finally:
                notifier.release(delivery_id)

        return chat.answers.offer(click.dedupe_key, render_dingtalk_update(card).param_map, confirm)

    async def on_inbound(item: DingTalkEvent | RobotMessage | CardClick) -> None:
        if isinstance(item, RobotMessage):
            await on_message(item)
        elif isinstance(item, CardClick):
            try:
                await on_click(item)
            finally:  # ended early (clicker unknown or inactive) or failed: the answer stops waiting
                if chat.answers is not None:
                    chat.answers.decline(item.dedupe_key)
        else:
            log.info(
                "dingtalk event received", extra={"event_type": item.event_type, "event_id": item.event_id}
            )

    return on_inbound
