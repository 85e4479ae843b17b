"""Linking chat records to a work order from chat (platform-neutral: core ports only).

    关联 <order_no> | link <order_no>     start a session for this person on this platform
    (every other message)                 kept as a chat record and linked to the order
    完成 | done | 结束 | finish | 取消 | cancel   end the session (what was linked stays linked)

`Linking.reply(username, text, platform, request_key)` is called by the conversation before any
other parsing. It answers None when the message is none of its business (no session, not a 关联
command), so the conversation goes on as usual; otherwise the reply.

- Starting needs a well-formed order number (core.order_no), a ticket that exists, that the person
  may see (core.access.can_view, as an active user) and that is a work order
  (core.workorder_templates); anything else is refused with the reason and starts nothing.
- While the session is open, each message is kept as a ChatRecord (source "chat", id =
  `request_key`, i.e. "<platform>:<msgid>"; from_id the username; content {"text": ...}) and
  linked to the order, so a message processed twice is kept and linked once. The session lasts
  SESSION_TTL after its last message. While it is open, only an exact `关联 <digits>` switches
  to another order: any other text, even one starting with 关联, is linked.
- An expired session is closed when the person writes again: within SESSION_TTL of its expiry
  they are told the message was not linked; later the message is handled as usual.
- The person's access is checked again for every message: once they may no longer see the order
  (or it is deleted), the session ends.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import SystemClock
from bot.handlers.help import Lang, reply_language
from bot.handlers.replies import tr
from core.access import can_view
from core.chat_links import ChatLinks, ChatLinkSession
from core.order_no import order_no, ticket_id_of
from core.ports import Clock, Directory, TicketQueries, WorkflowCatalog
from core.ticket import Ticket
from core.workflow import Workflow
from core.workorder import ChatRecord, ChatRecords
from core.workorder_templates import is_work_order

log = logging.getLogger("ticketbot.chat.linking")

SESSION_TTL = timedelta(minutes=30)
SOURCE = "chat"
MAX_RECORD_ID = 128
_MENTION = re.compile(r"@\S*\s+")
# the command, anywhere: 关联 / 关联工单 / link, then an optional argument (checked below)
_COMMAND = re.compile(r"(?:关联(?:工单)?|(?i:link)(?=\s|\Z))\s*(?P<arg>.*)\Z", re.DOTALL)
_ORDER_ARG = re.compile(r"#?(?P<no>[0-9]{1,40})\Z", re.ASCII)
_END_WORDS = frozenset({"完成", "结束", "取消", "done", "finish", "cancel", "stop"})
_TRAILING = " \t\n.!?。！？~"


def _clean(text: str) -> str:
    """The message as commands are recognised: compatibility forms folded (＃１ -> #1), spaces
    trimmed, a leading @mention and / dropped."""
    folded = unicodedata.normalize("NFKC", text).strip()
    while folded.startswith("@"):
        m = _MENTION.match(folded)
        folded = folded[m.end() :] if m else ""
    return folded.removeprefix("/").strip()


@dataclass(frozen=True, slots=True)
class _Command:
    """`关联 <arg>`: `order` the order number when `arg` is one (digits), else None."""

    arg: str
    order: str | None


def _command(text: str) -> _Command | None:
    m = _COMMAND.match(_clean(text))
    if m is None:
        return None
    arg = m.group("arg").strip()
    digits = _ORDER_ARG.match(arg)
    return _Command(arg, digits.group("no") if digits else None)


def _is_end(text: str) -> bool:
    return _clean(text).rstrip(_TRAILING).casefold() in _END_WORDS


class Linking:
    def __init__(
        self,
        links: ChatLinks,
        records: ChatRecords,
        queries: TicketQueries,
        catalog: WorkflowCatalog,
        directory: Directory,
        *,
        clock: Clock | None = None,
        ttl: timedelta = SESSION_TTL,
    ) -> None:
        self._links = links
        self._records = records
        self._queries = queries
        self._catalog = catalog
        self._directory = directory
        self._clock = clock or SystemClock()
        self._ttl = ttl

    async def reply(self, username: str, text: str, platform: str, request_key: str = "") -> str | None:
        """The reply when the message starts, continues or ends a linking session, else None."""
        lang = reply_language(text)
        now = self._clock.now()
        command = _command(text)
        session = await self._links.current(platform, username)
        if session is not None and not session.live(now):
            await self._links.end(platform, username)
            log.info(
                "chat linking session expired",
                extra={"username": username, "platform": platform, "ticket_id": session.ticket_id},
            )
            if command is None and now - session.expires_at < self._ttl:
                no = order_no(session.ticket_id)
                return tr(
                    lang,
                    f"关联工单 {no} 已超时结束（{self._minutes} 分钟没有新消息），这条消息没有关联。"
                    f"继续关联请再发送“关联 {no}”。",
                    f"Linking to work order {no} ended after {self._minutes} minutes without a message; "
                    f'this message was not linked. Send "link {no}" to go on.',
                )
            session = None
        if command is not None and (session is None or command.order is not None):
            return await self._start(username, platform, command, lang, now)
        if session is None:
            return None
        if _is_end(text):
            return await self._end(session, lang)
        return await self._link(session, text, request_key, lang, now)

    @property
    def _minutes(self) -> int:
        return max(1, int(self._ttl.total_seconds() // 60))

    # ---------------------------------------------------------------- the order

    async def _order(self, username: str, ticket_id: int) -> tuple[Ticket, Workflow] | str:
        """The work order if `username` may link to it, else why not ("unknown" or "not a work order")."""
        ticket = await self._queries.get_ticket(ticket_id)
        if ticket is None or ticket.is_deleted:
            return "unknown"
        wf = self._catalog.get(ticket.workflow_id, ticket.workflow_version) or self._catalog.get(
            ticket.workflow_id
        )
        org = await self._directory.org()
        if wf is None or not org.active(username) or not can_view(ticket, wf, org, username):
            return "unknown"
        if not is_work_order(wf):
            return "not a work order"
        return ticket, wf

    async def _start(self, username: str, platform: str, command: _Command, lang: Lang, now: datetime) -> str:
        if not command.arg:
            return tr(
                lang,
                "请写上工单号，例如：关联 1470000000000000001",
                "Add the work order number, e.g.: link 1470000000000000001",
            )
        ticket_id = ticket_id_of(command.order) if command.order is not None else None
        if ticket_id is None:
            return tr(
                lang,
                f"工单号“{command.arg[:40]}”格式不对：应为 19 位左右的数字，例如 1470000000000000001。",
                f"'{command.arg[:40]}' is not a work order number (about 19 digits, e.g. 1470000000000000001).",
            )
        no = order_no(ticket_id)
        found = await self._order(username, ticket_id)
        if found == "unknown":
            return tr(
                lang,
                f"找不到工单 {no}，或你无权查看。",
                f"Work order {no} was not found or you may not see it.",
            )
        if isinstance(found, str):
            return tr(
                lang,
                f"{no} 不是客服工单，不能关联聊天记录。",
                f"{no} is not a work order; chat records cannot be linked to it.",
            )
        ticket, _ = found
        await self._links.start(platform, username, ticket.id, now + self._ttl, now)
        log.info(
            "chat linking session started",
            extra={"username": username, "platform": platform, "ticket_id": ticket.id},
        )
        return tr(
            lang,
            f"开始关联工单 {no}（{ticket.title}）：接下来转发或发给我的消息都会关联到这个工单。"
            f"发“完成”结束；{self._minutes} 分钟没有新消息会自动结束。",
            f"Linking to work order {no} ({ticket.title}): what you forward or send me next is linked to it. "
            f'Send "done" to finish; it ends by itself after {self._minutes} minutes without a message.',
        )

    async def _end(self, session: ChatLinkSession, lang: Lang) -> str:
        await self._links.end(session.platform, session.username)
        count = len(await self._records.linked(session.ticket_id))
        no = order_no(session.ticket_id)
        log.info(
            "chat linking session ended",
            extra={
                "username": session.username,
                "platform": session.platform,
                "ticket_id": session.ticket_id,
            },
        )
        return tr(
            lang,
            f"已结束关联工单 {no}，该工单共关联 {count} 条聊天记录。",
            f"Finished linking to work order {no}; it has {count} chat records linked.",
        )

    async def _link(
        self, session: ChatLinkSession, text: str, request_key: str, lang: Lang, now: datetime
    ) -> str:
        no = order_no(session.ticket_id)
        found = await self._order(session.username, session.ticket_id)
        if isinstance(found, str):
            await self._links.end(session.platform, session.username)
            return tr(
                lang,
                f"你已无法查看工单 {no}，关联已结束，这条消息没有关联。",
                f"You may no longer see work order {no}; linking ended and this message was not linked.",
            )
        if not text.strip():
            return tr(
                lang,
                f"空消息没有关联。发“完成”结束关联工单 {no}。",
                'Empty message not linked. Send "done" to finish.',
            )
        record_id = request_key if 0 < len(request_key) <= MAX_RECORD_ID else ""
        if not record_id:  # no message id: this message is kept on its own
            record_id = f"{session.platform}:{session.username}:{secrets.token_hex(8)}"[:MAX_RECORD_ID]
        record = ChatRecord(
            id=record_id,
            source=SOURCE,
            sent_at=now,
            from_id=session.username,
            content={"text": text},
        )
        await self._records.add([record], now)
        await self._records.link(session.ticket_id, [record_id], session.username, now)
        await self._links.extend(session.platform, session.username, now + self._ttl, now)
        count = len(await self._records.linked(session.ticket_id))
        log.info(
            "chat message linked to a work order",
            extra={"username": session.username, "ticket_id": session.ticket_id, "msg_id": record_id},
        )
        return tr(
            lang,
            f"已关联到工单 {no}，共 {count} 条；发“完成”结束",
            f'Linked to work order {no} ({count} in all); send "done" to finish',
        )
