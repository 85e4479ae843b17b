"""WeCom inbound processing: a member's text message -> the conversation's reply, sent back as text.

`make_wecom_processor` builds the `on_event` coroutine the callback routes run from the inbox.
Only text messages are answered; other messages and events are logged at DEBUG and dropped.
A reply WeCom refuses (rate limit, errors after the client's retries) is logged and dropped, not
raised: the inbox would otherwise retry the whole message and run its command a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.handlers.conversation import Conversation
from bot.wecom.callback import InboundEvent
from bot.wecom.client import RateLimited, WeComClient, WeComError
from core.org import User
from core.ports import Directory

log = logging.getLogger("ticketbot.wecom.processing")

NOT_IN_DIRECTORY = (
    "你不在本系统的通讯录中，请联系管理员。\nYou are not in this system's directory; ask your administrator."
)
INACTIVE = "你的账号已停用，请联系管理员。\nYour account is disabled; ask your administrator."


def _find_user(users: list[User], wecom_userid: str) -> User | None:
    wanted = wecom_userid.casefold()
    return next((u for u in users if u.wecom_userid and u.wecom_userid.casefold() == wanted), None)


def make_wecom_processor(
    conversation: Conversation, client: WeComClient, directory: Directory
) -> Callable[[InboundEvent], Awaitable[None]]:
    async def on_event(event: InboundEvent) -> None:
        if event.msg_type != "text" or not event.from_user:
            log.debug(
                "wecom event ignored",
                extra={"msg_type": event.msg_type, "event": event.event, "msg_id": event.msg_id},
            )
            return
        org = await directory.org()
        user = _find_user(list(org.users.values()), event.from_user)
        if user is None:
            log.info("wecom message from a userid not in the directory", extra={"from_user": event.from_user})
            reply = NOT_IN_DIRECTORY
        elif not user.is_active:
            log.info("wecom message from an inactive user", extra={"username": user.username})
            reply = INACTIVE
        else:
            reply = await conversation.reply_to(user.username, event.content)
        try:
            await client.send_text(event.from_user, reply)
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

    return on_event
