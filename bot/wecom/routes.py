"""The WeCom callback URL: GET (URL verification) and POST (messages and events) on /wecom/callback.

POST follows the house rule for inbound callbacks (design.md, "Side effects"): verify -> decrypt ->
parse -> store in the inbox under its dedupe key -> answer an EMPTY 200 at once (WeCom waits 5 s,
then retries; a duplicate is answered the same way and dropped) -> process from the inbox in a
tracked background task. Processing claims the stored row, calls `on_event`, and marks the row
done, or failed (due again later; dead after the inbox's attempt limit).

At start-up (and every minute, from the app's job runner), rows whose processing claim outlived the
lease (the process died mid-way) go back to pending, and every due pending row is processed: a
crash loses nothing. At most `max_concurrent` events are processed at once so that acks stay fast
under load; beyond `max_backlog` waiting events, new ones stay in the inbox for that drain. At shutdown the running
tasks are awaited (then cancelled after a timeout; their rows stay claimed until the lease ends).

Refusals answer a short plain-text reason (403 signature / corp id / replay window, 400 malformed)
and are logged at INFO with the reason and, when known, the platform message id; the token and
the AES key never reach a log line or a response.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiohttp import web

from bot.clock import SystemClock
from bot.wecom.callback import MAX_BODY_BYTES, PLATFORM, InboundEvent, parse_message, parse_post, parse_query
from bot.wecom.callback import verify_url as verify_callback_url
from bot.wecom.crypto import CallbackRefused, WeComCrypto
from core.ports import Clock

log = logging.getLogger("ticketbot.wecom.callback")

CALLBACK_PATH = "/wecom/callback"
LEASE_SECONDS = 300.0  # a claim older than this is presumed dead (its process crashed)
DRAIN_BATCH = 50
SHUTDOWN_TIMEOUT = 10.0
MAX_CONCURRENT = 4  # events processed at once: the acks keep the event loop's attention
MAX_BACKLOG = 500  # events waiting for a slot; beyond that they wait in the inbox for the drain job
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)

OnEvent = Callable[[InboundEvent], Awaitable[None]]


class InboxEntry(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def dedupe_key(self) -> str: ...
    @property
    def payload(self) -> str: ...
    @property
    def attempts(self) -> int: ...


class Inbox(Protocol):
    """What the callback needs of the inbox (store.inbox.SqlInbox in the app)."""

    async def add(self, platform: str, dedupe_key: str, payload: str, received_at: datetime) -> bool: ...
    async def claim(
        self, limit: int, now: datetime, *, platform: str | None = None
    ) -> Sequence[InboxEntry]: ...
    async def claim_key(self, platform: str, dedupe_key: str, now: datetime) -> InboxEntry | None: ...
    async def done(self, id: int, now: datetime) -> bool: ...
    async def failed(self, id: int, error: str, now: datetime, retry_at: datetime) -> str | None: ...
    async def recover(self, now: datetime, lease_seconds: float, *, platform: str | None = None) -> int: ...


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


def retry_delay(attempts_before: int) -> timedelta:
    """Backoff after the (attempts_before + 1)-th failure: 30 s, 60 s, 120 s ... at most an hour."""
    delay: timedelta = RETRY_BASE * (2 ** min(attempts_before, 16))
    return min(delay, RETRY_MAX)


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
        lease_seconds: float = LEASE_SECONDS,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
        max_concurrent: int = MAX_CONCURRENT,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self.crypto = crypto
        self.corp_id = corp_id
        self.inbox = inbox
        self.on_event = on_event
        self.clock: Clock = clock or SystemClock()
        self.replay_window = replay_window
        self.max_bytes = max_bytes
        self.lease_seconds = lease_seconds
        self.shutdown_timeout = shutdown_timeout
        self.tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._slots = asyncio.Semaphore(max_concurrent)
        self._max_backlog = max_backlog

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
        elif self._closing:
            log.info("wecom callback stored; shutting down, processed at the next start", extra=extra)
        elif len(self.tasks) >= self._max_backlog:
            log.warning("wecom callback stored; backlog full, the inbox drain will process it", extra=extra)
        else:
            self.spawn(self.process(event), f"wecom-inbox-{event.dedupe_key}")
        return web.Response(status=200)

    async def _read_body(self, request: web.Request) -> bytes:
        too_big = CallbackRefused(400, f"the body is larger than {self.max_bytes} bytes")
        if request.content_length is not None and request.content_length > self.max_bytes:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(self.max_bytes + 1):
            size += len(chunk)
            if size > self.max_bytes:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

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

    # ---- processing

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("wecom inbox task failed", extra={"task": task.get_name()}, exc_info=exc)

    async def process(self, event: InboundEvent) -> None:
        """Claim the stored row of `event` and run it (nothing happens if another worker has it),
        at most `max_concurrent` at a time."""
        async with self._slots:
            item = await self.inbox.claim_key(PLATFORM, event.dedupe_key, self.clock.now())
            if item is not None:
                await self._run(item, event)

    async def _run(self, item: InboxEntry, event: InboundEvent | None) -> None:
        extra = {"inbox_id": item.id, "dedupe_key": item.dedupe_key, "msg_id": event.msg_id if event else ""}
        try:
            if event is None:
                event = parse_message(item.payload, self.corp_id, self.max_bytes)
                extra["msg_id"] = event.msg_id
            await self.on_event(event)
        except Exception as exc:
            now = self.clock.now()
            reason = exc.reason if isinstance(exc, CallbackRefused) else f"{type(exc).__name__}: {exc}"
            status = await self.inbox.failed(item.id, reason, now, now + retry_delay(item.attempts))
            log.warning(
                "wecom event processing failed",
                extra={**extra, "error": reason, "status": status},
                exc_info=not isinstance(exc, CallbackRefused),
            )
            return
        await self.inbox.done(item.id, self.clock.now())
        log.debug("wecom event processed", extra=extra)

    async def drain(self) -> int:
        """Process every due pending WeCom row, oldest first; returns how many were run."""
        count = 0
        while not self._closing:
            batch = await self.inbox.claim(DRAIN_BATCH, self.clock.now(), platform=PLATFORM)
            if not batch:
                break
            for item in batch:
                await self._run(item, None)
            count += len(batch)
        return count

    async def recover_and_drain(self) -> None:
        recovered = await self.inbox.recover(self.clock.now(), self.lease_seconds, platform=PLATFORM)
        processed = await self.drain()
        if recovered or processed:
            log.info("wecom inbox recovered", extra={"recovered": recovered, "processed": processed})

    # ---- app lifecycle

    async def on_startup(self, _: web.Application) -> None:
        self.spawn(self.recover_and_drain(), "wecom-inbox-recovery")

    async def on_shutdown(self, _app: web.Application) -> None:
        self._closing = True
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=self.shutdown_timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("wecom inbox tasks cancelled at shutdown", extra={"cancelled": len(pending)})


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
    app.on_startup.append(callbacks.on_startup)
    app.on_shutdown.append(callbacks.on_shutdown)
    return callbacks
