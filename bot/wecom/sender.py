"""The notifier's WeCom side: neutral cards -> template cards through the async client.

Errors become `SendFailed` with a retry hint the notifier understands:
- rate limit (30/min, 1000/h per member): retry when the window allows;
- busy / unreachable: retry in RETRY_SECONDS;
- configuration problems WeCom may stop raising once an admin fixes them (IP not trusted, no
  permission, bad secret, token refused): retry in CONFIG_RETRY_SECONDS, logged loudly;
- every recipient invalid (the member left or is outside the app's visible range): no retry;
- 60140 on an update (code used or over 24 h old): `code_used`, so a fresh message is sent;
- a card send refused because its task_id is used (TaskIdUsed): an earlier attempt of this very
  delivery reached WeCom but its answer was lost (a timeout, or a worker killed before recording
  it). The card is out: the send counts as done, with no msgid and no response_code yet (the
  recipient's first click brings one, so the card can still be updated). Task ids are unique per
  delivery and per message (bot.cards.wecom.task_id_for), so nobody else's card has it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.cards.model import Card
from bot.cards.wecom import render_wecom, render_wecom_update, task_id_for
from bot.notify.ports import Delivery, SendFailed, SentRef
from bot.wecom.client import (
    AllRecipientsInvalid,
    RateLimited,
    ResponseCodeInvalid,
    TaskIdUsed,
    WeComBusy,
    WeComClient,
    WeComError,
    WeComUnavailable,
)
from core.org import User

log = logging.getLogger("ticketbot.wecom.sender")

PLATFORM = "wecom"
CODE_TTL = timedelta(hours=24)  # response_code: 72 h in newer docs, 24 h in older ones; 24 h is the bound
RETRY_SECONDS = 30.0
CONFIG_RETRY_SECONDS = 600.0


def _failed(exc: WeComError) -> SendFailed:
    if isinstance(exc, RateLimited):
        return SendFailed(str(exc), retry_after=max(1.0, exc.retry_after_seconds), rate_limited=True)
    if isinstance(exc, ResponseCodeInvalid):
        return SendFailed(str(exc), code_used=True)
    if isinstance(exc, WeComBusy | WeComUnavailable):
        return SendFailed(str(exc), retry_after=RETRY_SECONDS)
    if isinstance(exc, AllRecipientsInvalid):
        return SendFailed(str(exc))
    log.error("wecom refused a message; fix the app's configuration", extra={"error": str(exc)})
    return SendFailed(str(exc), retry_after=CONFIG_RETRY_SECONDS)


class WeComSender:
    platform = PLATFORM

    def __init__(self, client: WeComClient, agent_id: int) -> None:
        self._client = client
        self._agent_id = agent_id

    def address_of(self, user: User) -> str:
        return user.wecom_userid or ""

    async def send_card(self, delivery: Delivery, card: Card, *, fresh: int = 0) -> SentRef:
        """Send `card`; `fresh` > 0 for a later message about the same delivery (a new task_id)."""
        task_id = task_id_for(delivery.ticket_id, delivery.recipient, delivery.id * 100 + fresh)
        body = render_wecom(card, task_id=task_id, agent_id=self._agent_id)
        try:
            result = await self._client.send_template_card(delivery.address, body["template_card"])
        except TaskIdUsed:
            log.warning(
                "wecom card was delivered by an earlier attempt whose answer was lost; counted as sent",
                extra={"delivery_id": delivery.id, "task_id": task_id, "attempts": delivery.attempts},
            )
            return SentRef("", "", task_id, None)
        except WeComError as exc:
            raise _failed(exc) from exc
        if delivery.address in result.invalid_users:
            raise SendFailed(f"WeCom reported {delivery.address!r} as an invalid recipient")
        code = result.response_code or ""
        return SentRef(result.msgid, code, task_id, CODE_TTL if code else None)

    def can_update(self, delivery: Delivery, now: datetime) -> bool:
        expires = delivery.code_expires_at
        return bool(delivery.task_id and delivery.response_code) and expires is not None and expires > now

    async def update_card(self, delivery: Delivery, card: Card) -> None:
        if not delivery.task_id or not delivery.response_code:
            raise SendFailed("the card has no task_id or unused response_code", code_used=True)
        body = render_wecom_update(card, task_id=delivery.task_id, agent_id=self._agent_id)
        try:
            await self._client.update_template_card([delivery.address], delivery.response_code, body)
        except WeComError as exc:
            raise _failed(exc) from exc

    async def send_text(self, address: str, text: str) -> None:
        try:
            await self._client.send_text(address, text)
        except WeComError as exc:
            raise _failed(exc) from exc
