"""DingTalk's three callback URLs, each following the house rule for inbound callbacks (verify ->
parse -> store in the inbox under its dedupe key -> answer at once -> process from the inbox):

- ``POST /dingtalk/events`` (HTTP event subscription): both spellings of the query names; the URL
  check (``check_url``) is answered at once, without the inbox (DingTalk waits 1500 ms); every
  other push is stored and answered with the encrypted ``success``;
- ``POST /dingtalk/robot`` (robot messages, HTTP mode): the ``timestamp`` / ``sign`` headers
  (HMAC-SHA256 with the app secret, 1 h window) and the ``robotCode`` are checked, the message is
  stored under ``msg:<msgId>`` and answered with an empty JSON object; the reply goes out later
  (session webhook while it is valid, the robot's batch send after);
- ``POST /dingtalk/card`` (interactive card clicks): the ``x-ddpaas-signature`` is checked, the
  click is stored and processed at once, waited for up to `CLICK_BUDGET` seconds (DingTalk waits
  2 s), then answered with the clicked card's new data (no API call); a click not done in time
  is answered empty and its card is updated by the notifier, like every other card.

The platform-neutral `bot.inbox.InboxWorker` runs what is stored (bounded concurrency, retries,
recovery after a crash). Refusals answer a short plain-text reason (403 signature / robot code /
owner key, 400 malformed); secrets never reach a log line or a response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.clock import SystemClock
from bot.dingtalk.answers import ClickAnswers
from bot.dingtalk.card_callback import CardClick, parse_card_callback, verify_card_signature
from bot.dingtalk.crypto import CallbackRefused, DingTalkCrypto
from bot.dingtalk.events import (
    MAX_BODY_BYTES,
    PLATFORM,
    DingTalkEvent,
    parse_event,
    parse_event_plaintext,
    reply_success,
)
from bot.dingtalk.robot import RobotMessage, parse_robot_message, verify_robot_sign
from bot.http import BodyRefused, read_body
from bot.inbox import Inbox, InboxWorker
from core.ports import Clock

log = logging.getLogger("ticketbot.dingtalk.callback")

EVENTS_PATH = "/dingtalk/events"
ROBOT_PATH = "/dingtalk/robot"
CARD_PATH = "/dingtalk/card"
CLICK_BUDGET = 1.5  # seconds a click is processed before the answer (DingTalk waits 2 s)
ANSWER_DEADLINE = 2.0  # DingTalk applies an answer's card data only if it came within 2 s
CARD_WINDOW_MS = 60 * 60 * 1000  # the signature covers only its timestamp: an old pair is refused

Inbound = DingTalkEvent | RobotMessage | CardClick
OnInbound = Callable[[Inbound], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DingTalkSecrets:
    app_secret: str  # robot sign and card callback signature (the card callback's apiSecret)
    robot_code: str
    corp_id: str | None = None


def _payload(kind: str, body: str) -> str:
    return json.dumps({"kind": kind, "body": body}, ensure_ascii=False)


class DingTalkCallbacks:
    def __init__(
        self,
        *,
        crypto: DingTalkCrypto | None,
        secrets: DingTalkSecrets,
        inbox: Inbox,
        on_inbound: OnInbound,
        clock: Clock | None = None,
        max_bytes: int = MAX_BODY_BYTES,
        answers: ClickAnswers | None = None,
    ) -> None:
        self.answers = answers or ClickAnswers()
        self.crypto = crypto
        self.secrets = secrets
        self.clock: Clock = clock or SystemClock()
        self.max_bytes = max_bytes
        self.worker: InboxWorker[Inbound] = InboxWorker(
            PLATFORM, inbox, self.parse_stored, on_inbound, self.clock
        )

    @property
    def tasks(self) -> set[asyncio.Task[None]]:
        return self.worker.tasks

    def parse_stored(self, payload: str) -> Inbound:
        """An inbox row back into what was received (its checks were passed when it was stored)."""
        stored = json.loads(payload)
        kind, body = stored["kind"], stored["body"]
        if kind == "event":
            return parse_event_plaintext(body, max_bytes=self.max_bytes)
        if kind == "robot":
            return parse_robot_message(
                body.encode("utf-8"), robot_code=self.secrets.robot_code, max_bytes=self.max_bytes
            )
        return parse_card_callback(body.encode("utf-8"), max_bytes=self.max_bytes)

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def _body(self, request: web.Request) -> bytes:
        try:
            return await read_body(request, self.max_bytes)
        except BodyRefused as exc:
            raise CallbackRefused(400, str(exc)) from None

    async def _store(self, kind: str, key: str, body: str, item: Inbound, extra: dict[str, Any]) -> bool:
        """Store and hand over to the worker; False if it is a duplicate (it is answered all the same)."""
        added = await self.worker.inbox.add(PLATFORM, key, _payload(kind, body), self.clock.now())
        if not added:
            log.info("dingtalk callback is a duplicate; dropped", extra=extra)
            return False
        self.worker.accept(key, item, extra)
        return True

    def _refused(self, request: web.Request, exc: CallbackRefused) -> web.Response:
        log.info(
            "dingtalk callback refused",
            extra={"path": request.path, "status": exc.status, "reason": exc.reason, "msg_id": exc.msg_id},
        )
        return web.Response(status=exc.status, text=exc.reason)

    # ---- handlers

    async def handle_event(self, request: web.Request) -> web.StreamResponse:
        if self.crypto is None:
            return web.Response(status=404, text="event subscription is not configured")
        try:
            event = parse_event(
                self.crypto,
                request.rel_url.raw_query_string,
                await self._body(request),
                max_bytes=self.max_bytes,
                corp_id=self.secrets.corp_id,
            )
        except CallbackRefused as exc:
            return self._refused(request, exc)
        reply = reply_success(self.crypto, timestamp=str(self._now_ms()), nonce=secrets.token_hex(4))
        if event.is_check_url:
            log.info("dingtalk event subscription URL checked")
            return web.json_response(reply)
        extra = {"event_type": event.event_type, "dedupe_key": event.dedupe_key}
        try:
            await self._store("event", event.dedupe_key, event.raw, event, extra)
        except Exception:
            log.exception("dingtalk event not stored", extra=extra)
            return web.Response(status=503, text="storage unavailable; retry later")
        return web.json_response(reply)

    async def handle_robot(self, request: web.Request) -> web.StreamResponse:
        try:
            verify_robot_sign(request.headers, self.secrets.app_secret, self._now_ms())
            body = await self._body(request)
            message = parse_robot_message(
                body,
                robot_code=self.secrets.robot_code,
                corp_id=self.secrets.corp_id,
                max_bytes=self.max_bytes,
            )
        except CallbackRefused as exc:
            return self._refused(request, exc)
        extra = {"msg_id": message.msg_id, "dedupe_key": message.dedupe_key}
        try:
            await self._store("robot", message.dedupe_key, body.decode("utf-8"), message, extra)
        except Exception:
            log.exception("dingtalk robot message not stored", extra=extra)
            return web.Response(status=503, text="storage unavailable; retry later")
        return web.json_response({})

    async def handle_card(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            verify_card_signature(request.headers, self.secrets.app_secret, self._now_ms(), CARD_WINDOW_MS)
            body = await self._body(request)
            click = parse_card_callback(body, max_bytes=self.max_bytes, corp_id=self.secrets.corp_id)
        except CallbackRefused as exc:
            return self._refused(request, exc)
        extra = {"out_track_id": click.out_track_id, "dedupe_key": click.dedupe_key}
        try:
            added = await self.worker.inbox.add(
                PLATFORM, click.dedupe_key, _payload("click", body.decode("utf-8")), self.clock.now()
            )
        except Exception:
            log.exception("dingtalk card click not stored", extra=extra)
            return web.Response(status=503, text="storage unavailable; retry later")
        if not added:
            log.info("dingtalk card click is a duplicate; dropped", extra=extra)
            return web.json_response({})
        if self.worker.closing:
            return web.json_response({})
        future = self.answers.expect(click.dedupe_key)
        self.worker.spawn(
            self.worker.process(click.dedupe_key, click), f"dingtalk-click-{click.out_track_id}"
        )
        offer = await self.answers.wait(click.dedupe_key, future, CLICK_BUDGET - (loop.time() - started))
        if offer is None:  # nothing to show, or not in time: the notifier updates the card
            return web.json_response({})
        response = web.json_response(
            {"cardData": {"cardParamMap": offer.params}, "cardUpdateOptions": {"updateCardDataByKey": False}}
        )
        ok = False
        try:
            await response.prepare(request)
            await response.write_eof()
            ok = loop.time() - started < ANSWER_DEADLINE
        finally:
            await offer.confirm(ok)
        return response


DINGTALK_CALLBACKS = web.AppKey("dingtalk_callbacks", DingTalkCallbacks)


def add_dingtalk_routes(
    app: web.Application,
    *,
    crypto: DingTalkCrypto | None,
    secrets: DingTalkSecrets,
    inbox: Inbox,
    on_inbound: OnInbound,
    clock: Clock | None = None,
    answers: ClickAnswers | None = None,
) -> DingTalkCallbacks:
    """Serve the three DingTalk callback URLs on `app` (events only with a crypto)."""
    callbacks = DingTalkCallbacks(
        crypto=crypto, secrets=secrets, inbox=inbox, on_inbound=on_inbound, clock=clock, answers=answers
    )
    app[DINGTALK_CALLBACKS] = callbacks
    app.router.add_post(EVENTS_PATH, callbacks.handle_event)
    app.router.add_post(ROBOT_PATH, callbacks.handle_robot)
    app.router.add_post(CARD_PATH, callbacks.handle_card)
    app.on_startup.append(callbacks.worker.on_startup)
    app.on_shutdown.append(callbacks.worker.on_shutdown)
    return callbacks
