"""The notifier's DingTalk side: neutral cards -> interactive cards (or text) through the client.

- With a card template id: `createAndDeliver` to the person's chat with the robot
  (``dtv1.card//IM_ROBOT.<userId>``), ``outTrackId`` = our task id; clicks come back over HTTP to
  the callback registered under the route key. A card is updated in place by its outTrackId at
  any time (DingTalk has no single-use code), so a decided card never needs a fresh message.
- Without a template id: the robot's batch send with a plain-text rendering, which cannot be
  updated (a change is a new message).
- The fallback channel: when a card cannot be delivered to the person's robot chat (DingTalk
  answers the delivery as failed, e.g. the person never opened the robot) and the app's AgentId
  is configured, an ``oa`` work notification with the card's fields and a link; its status bar is
  what an update changes ("待处理" -> "已同意 · 王强 · ...").

Errors become `SendFailed`: throttling and outages are retried; an unknown user, a failed
delivery or a missing permission is not (the monthly quota makes blind retries expensive).
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.cards.dingtalk import (
    render_dingtalk,
    render_dingtalk_oa,
    render_dingtalk_text,
    render_dingtalk_update,
)
from bot.cards.model import Card
from bot.dingtalk.client import (
    CardNotFound,
    DeliveryFailed,
    DingTalkClient,
    DingTalkError,
    QuotaExhausted,
    Throttled,
    Unavailable,
    robot_space,
)
from bot.notify.ports import Delivery, SendFailed, SentRef
from core.org import User

log = logging.getLogger("ticketbot.dingtalk.sender")

PLATFORM = "dingtalk"
OA_PREFIX = "oa-"  # task ids of work notifications (their status bar is what an update changes)
RETRY_SECONDS = 30.0
QUOTA_RETRY_SECONDS = 3600.0


def _failed(exc: DingTalkError) -> SendFailed:
    if isinstance(exc, Throttled | Unavailable):
        return SendFailed(str(exc), retry_after=RETRY_SECONDS)
    if isinstance(exc, QuotaExhausted):
        log.error("dingtalk quota exhausted; retrying hourly", extra={"error": str(exc)})
        return SendFailed(str(exc), retry_after=QUOTA_RETRY_SECONDS)
    if isinstance(exc, CardNotFound):  # DingTalk forgot the card: the result goes out as a new one
        return SendFailed(str(exc), code_used=True)
    if isinstance(exc, DeliveryFailed):
        return SendFailed(str(exc))
    log.error("dingtalk refused a message", extra={"error": str(exc)})
    return SendFailed(str(exc))


def task_id_for(delivery: Delivery, fresh: int) -> str:
    """Our outTrackId: unique per delivery (and per fresh message about it)."""
    return f"tb_{delivery.ticket_id}_{delivery.id}" + (f"_{fresh}" if fresh else "")


class DingTalkSender:
    platform = PLATFORM

    def __init__(
        self,
        client: DingTalkClient,
        *,
        template_id: str,
        callback_route_key: str,
        agent_id: int | None = None,
    ) -> None:
        self._client = client
        self._template_id = template_id
        self._route_key = callback_route_key
        self._agent_id = agent_id

    def address_of(self, user: User) -> str:
        return user.dingtalk_staff_id or ""

    async def send_card(self, delivery: Delivery, card: Card, *, fresh: int = 0) -> SentRef:
        task_id = task_id_for(delivery, fresh)
        try:
            if not self._template_id:
                sent = await self._client.robot_batch_send(
                    [delivery.address], "sampleText", {"content": render_dingtalk_text(card)}
                )
                if delivery.address in sent.invalid_user_ids:
                    raise SendFailed(f"DingTalk reported {delivery.address!r} as an invalid user")
                if delivery.address in sent.flow_controlled_user_ids:
                    raise SendFailed("DingTalk flow-controlled the message", retry_after=RETRY_SECONDS)
                return SentRef(",".join(sent.process_query_keys), "", None)
            rendered = render_dingtalk(card)
            await self._client.create_and_deliver_card(
                task_id,
                self._template_id,
                rendered.param_map,
                open_space_id=robot_space(delivery.address),
                callback_route_key=self._route_key,
            )
        except DeliveryFailed as exc:
            if self._agent_id is None:
                raise _failed(exc) from exc
            return await self._send_oa(self._agent_id, delivery, card, exc)
        except DingTalkError as exc:
            if "outTrackId.duplicate" in exc.code:
                # an earlier attempt went through but its answer was lost (a timeout, or a worker
                # killed before recording it, whose claim another took over): the card is out
                log.warning(
                    "dingtalk card was delivered by an earlier attempt whose answer was lost; counted as sent",
                    extra={"out_track_id": task_id, "attempts": delivery.attempts},
                )
                return SentRef(task_id, "", task_id)
            raise _failed(exc) from exc
        return SentRef(task_id, "", task_id)

    async def _send_oa(self, agent_id: int, delivery: Delivery, card: Card, why: DeliveryFailed) -> SentRef:
        """The fallback: a work notification, whose status bar stands in for the card's buttons."""
        log.info(
            "dingtalk card not delivered; sent as a work notification",
            extra={"ticket_id": delivery.ticket_id, "to": delivery.recipient, "why": str(why)[:200]},
        )
        try:
            (task,) = await self._client.send_oa(agent_id, [delivery.address], render_dingtalk_oa(card))
        except DingTalkError as exc:
            raise _failed(exc) from exc
        return SentRef(f"oa:{task}", "", f"{OA_PREFIX}{task}")

    def can_update(self, delivery: Delivery, now: datetime) -> bool:
        task_id = delivery.task_id or ""
        if task_id.startswith(OA_PREFIX):
            return self._agent_id is not None
        return bool(self._template_id and task_id)

    async def update_card(self, delivery: Delivery, card: Card) -> None:
        task_id = delivery.task_id or ""
        if not task_id:
            raise SendFailed("the message was not an interactive card", code_used=True)
        try:
            if task_id.startswith(OA_PREFIX) and self._agent_id is not None:
                status = render_dingtalk_oa(card)["status_bar"]
                await self._client.update_oa_status_bar(
                    self._agent_id,
                    int(task_id[len(OA_PREFIX) :]),
                    status["status_value"],
                    status.get("status_bg"),
                )
                return
            await self._client.update_card(task_id, render_dingtalk_update(card).param_map, by_key=False)
        except DingTalkError as exc:
            raise _failed(exc) from exc

    async def send_text(self, address: str, text: str) -> None:
        try:
            await self._client.robot_batch_send([address], "sampleText", {"content": text})
        except DingTalkError as exc:
            raise _failed(exc) from exc
