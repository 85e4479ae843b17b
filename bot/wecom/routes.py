"""The WeCom callback URL: GET (URL verification) and POST (messages and events) on /wecom/callback.

POST follows the house rule for inbound callbacks (design.md, "Side effects"): verify -> decrypt ->
parse -> store in the inbox under its dedupe key -> answer an EMPTY 200 at once (WeCom waits 5 s,
then retries; a duplicate is answered the same way and dropped) -> process from the inbox in a
tracked background task. The processing itself (bounded concurrency, backlog, retries, recovery
after a crash, shutdown) is the platform-neutral `bot.inbox.InboxWorker`.

Refusals answer a short plain-text reason (403 signature / corp id / replay window, 400 malformed)
and are logged at INFO with the reason and, when known, the platform message id; the token and
the AES key never reach a log line or a response.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.clock import SystemClock
from bot.http import BodyRefused, read_body
from bot.inbox import MAX_BACKLOG, MAX_CONCURRENT, Inbox, InboxWorker
from bot.wecom.callback import MAX_BODY_BYTES, PLATFORM, InboundEvent, parse_message, parse_post, parse_query
from bot.wecom.callback import verify_url as verify_callback_url
from bot.wecom.crypto import CallbackRefused, WeComCrypto
from core.ports import Clock

log = logging.getLogger("ticketbot.wecom.callback")

CALLBACK_PATH = "/wecom/callback"

OnEvent = Callable[[InboundEvent], Awaitable[None]]


async def log_inbound_event(event: InboundEvent) -> None:
    """The stand-in processor: logs each inbound message or event and does nothing else.

    Processing is pluggable: `add_wecom_routes` takes any `on_event` coroutine function, and the
    composition root decides which one runs (the chat handlers, once they exist)."""
    log.info(
        "wecom event received",
        extra={
            "msg_id": event.msg_id,
            "dedupe_key": event.dedupe_key,
            "msg_type": event.msg_type,
            "event": event.event,
            "from_user": event.from_user,
        },
    )


class WeComCallbacks:
    """The GET/POST handlers and the inbox processing behind them; `tasks` are the running ones."""

    def __init__(
        self,
        *,
        crypto: WeComCrypto,
        corp_id: str,
        inbox: Inbox,
        on_event: OnEvent,
        clock: Clock | None = None,
        replay_window: int = 0,
        max_bytes: int = MAX_BODY_BYTES,
        max_concurrent: int = MAX_CONCURRENT,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self.crypto = crypto
        self.corp_id = corp_id
        self.inbox = inbox
        self.clock: Clock = clock or SystemClock()
        self.replay_window = replay_window
        self.max_bytes = max_bytes
        self.worker = InboxWorker(
            PLATFORM,
            inbox,
            lambda payload: parse_message(payload, corp_id, max_bytes),
            on_event,
            self.clock,
            max_concurrent=max_concurrent,
            max_backlog=max_backlog,
        )

    @property
    def tasks(self) -> set[asyncio.Task[None]]:
        return self.worker.tasks

    async def recover_and_drain(self) -> None:
        await self.worker.recover_and_drain()

    # ---- HTTP

    async def handle_get(self, request: web.Request) -> web.StreamResponse:
        try:
            query = parse_query(request.rel_url.raw_query_string)
            plaintext = verify_callback_url(
                self.crypto, query, now=self.clock.now().timestamp(), replay_window=self.replay_window
            )
        except CallbackRefused as exc:
            return self._refused(request, exc)
        log.info("wecom callback URL verified")
        return web.Response(body=plaintext.encode("utf-8"), content_type="text/plain", charset="utf-8")

    async def handle_post(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._read_body(request)
            event = parse_post(
                self.crypto,
                parse_query(request.rel_url.raw_query_string),
                body,
                self.corp_id,
                self.max_bytes,
                now=self.clock.now().timestamp(),
                replay_window=self.replay_window,
            )
        except CallbackRefused as exc:
            return self._refused(request, exc)
        extra = {"msg_id": event.msg_id, "dedupe_key": event.dedupe_key}
        try:
            added = await self.inbox.add(PLATFORM, event.dedupe_key, event.raw, self.clock.now())
        except Exception:  # the store is down: a non-200 makes WeCom deliver it again
            log.exception("wecom callback not stored", extra=extra)
            return web.Response(status=503, text="storage unavailable; retry later")
        if not added:
            log.info("wecom callback is a duplicate; dropped", extra=extra)
        else:
            self.worker.accept(event.dedupe_key, event, extra)
        return web.Response(status=200)

    async def _read_body(self, request: web.Request) -> bytes:
        try:
            return await read_body(request, self.max_bytes)
        except BodyRefused as exc:
            raise CallbackRefused(400, str(exc)) from None

    def _refused(self, request: web.Request, exc: CallbackRefused) -> web.Response:
        log.info(
            "wecom callback refused",
            extra={
                "method": request.method,
                "status": exc.status,
                "reason": exc.reason,
                "msg_id": exc.msg_id,
            },
        )
        return web.Response(status=exc.status, text=exc.reason)


WECOM_CALLBACKS = web.AppKey("wecom_callbacks", WeComCallbacks)


def add_wecom_routes(
    app: web.Application,
    *,
    crypto: WeComCrypto,
    corp_id: str,
    inbox: Inbox,
    on_event: OnEvent,
    clock: Clock | None = None,
    replay_window: int = 0,
    max_bytes: int = MAX_BODY_BYTES,
) -> WeComCallbacks:
    """Serve GET/POST /wecom/callback on `app`; the handlers and their task set are app[WECOM_CALLBACKS]."""
    callbacks = WeComCallbacks(
        crypto=crypto,
        corp_id=corp_id,
        inbox=inbox,
        on_event=on_event,
        clock=clock,
        replay_window=replay_window,
        max_bytes=max_bytes,
    )
    app[WECOM_CALLBACKS] = callbacks
    app.router.add_get(CALLBACK_PATH, callbacks.handle_get)
    app.router.add_post(CALLBACK_PATH, callbacks.handle_post)
    app.on_startup.append(callbacks.worker.on_startup)
    app.on_shutdown.append(callbacks.worker.on_shutdown)
    return callbacks
