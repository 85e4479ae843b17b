"""Processing inbound platform callbacks from the durable inbox. Platform-neutral.

The house rule for callbacks (design.md, "Side effects"): verify -> decrypt -> parse -> store in
the inbox under its dedupe key -> acknowledge at once -> process from the inbox. A platform
adapter does the first steps and the ack; an `InboxWorker` does the rest for one platform:

- `accept(key, event)` after a successful store: the event is processed in a tracked background
  task, at most `max_concurrent` at once (so acks keep the event loop's attention under load);
  beyond `max_backlog` waiting events a new one stays in the inbox for the next drain;
- processing claims the stored row (nothing happens if another worker has it), runs `on_event`,
  and marks the row done, or failed (due again after a backoff; dead after the inbox's limit);
- `recover_and_drain()` (at start-up and from the app's job runner every minute) puts rows whose
  claim outlived the lease back to pending (their process died mid-way) and processes every due
  pending row: a crash loses nothing;
- the row's outcome (done / failed) is written again while the store is unreachable (a database
  restart between the processing and its mark), for up to MARK_RETRY_SECONDS: otherwise the row
  would stay claimed until its lease ends and then run a second time;
- at shutdown the running tasks are awaited, then cancelled after a timeout (their rows stay
  claimed until the lease ends and are recovered then).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from core.ports import Clock

log = logging.getLogger("ticketbot.inbox")

LEASE_SECONDS = 300.0  # a claim older than this is presumed dead (its process crashed)
SHUTDOWN_TIMEOUT = 10.0
MAX_CONCURRENT = 4
MAX_BACKLOG = 500
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)
MARK_RETRY_SECONDS = 60.0  # how long a processed row's done / failed mark is retried
MARK_RETRY_FIRST = 0.25
MARK_RETRY_MAX = 5.0

E = TypeVar("E")
T = TypeVar("T")


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
    """What the callbacks need of the inbox (store.inbox.SqlInbox in the app)."""

    async def add(self, platform: str, dedupe_key: str, payload: str, received_at: datetime) -> bool: ...
    async def claim(
        self, limit: int, now: datetime, *, platform: str | None = None
    ) -> Sequence[InboxEntry]: ...
    async def claim_key(self, platform: str, dedupe_key: str, now: datetime) -> InboxEntry | None: ...
    async def done(self, id: int, now: datetime) -> bool: ...
    async def failed(self, id: int, error: str, now: datetime, retry_at: datetime) -> str | None: ...
    async def recover(self, now: datetime, lease_seconds: float, *, platform: str | None = None) -> int: ...


def retry_delay(attempts_before: int) -> timedelta:
    """Backoff after the (attempts_before + 1)-th failure: 30 s, 60 s, 120 s ... at most an hour."""
    delay: timedelta = RETRY_BASE * (2 ** min(attempts_before, 16))
    return min(delay, RETRY_MAX)


def _reason(exc: Exception) -> tuple[str, bool]:
    """A short reason for the inbox row and whether the failure is a refusal (no stack logged):
    the platforms' CallbackRefused carry `status` and `reason`."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and isinstance(getattr(exc, "status", None), int):
        return reason, True
    return f"{type(exc).__name__}: {exc}", False


class InboxWorker(Generic[E]):
    """Runs one platform's stored events. `parse(payload)` rebuilds an event from its stored
    payload (for drained rows); `on_event` processes one."""

    def __init__(
        self,
        platform: str,
        inbox: Inbox,
        parse: Callable[[str], E],
        on_event: Callable[[E], Awaitable[None]],
        clock: Clock,
        *,
        lease_seconds: float = LEASE_SECONDS,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
        max_concurrent: int = MAX_CONCURRENT,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self.platform = platform
        self.inbox = inbox
        self.parse = parse
        self.on_event = on_event
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.shutdown_timeout = shutdown_timeout
        self.max_backlog = max_backlog
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        self._slots = asyncio.Semaphore(max_concurrent)

    def accept(self, dedupe_key: str, event: E, extra: dict[str, Any]) -> None:
        """A newly stored event: process it now, or leave it in the inbox for the drain."""
        if self.closing:
            log.info("callback stored; shutting down, processed at the next start", extra=extra)
        elif len(self.tasks) >= self.max_backlog:
            log.warning("callback stored; backlog full, the inbox drain will process it", extra=extra)
        else:
            self.spawn(self.process(dedupe_key, event), f"{self.platform}-inbox-{dedupe_key}")

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
            log.error("inbox task failed", extra={"task": task.get_name()}, exc_info=exc)

    async def process(self, dedupe_key: str, event: E) -> None:
        """Claim the stored row and run it, at most `max_concurrent` at a time."""
        async with self._slots:
            item = await self.inbox.claim_key(self.platform, dedupe_key, self.clock.now())
            if item is not None:
                await self._run(item, event)

    async def _run(self, item: InboxEntry, event: E | None) -> None:
        extra = {"platform": self.platform, "inbox_id": item.id, "dedupe_key": item.dedupe_key}
        try:
            await self.on_event(self.parse(item.payload) if event is None else event)
        except Exception as exc:
            now = self.clock.now()
            reason, refused = _reason(exc)
            status = await self._mark(
                lambda: self.inbox.failed(item.id, reason, now, now + retry_delay(item.attempts)), extra
            )
            log.warning(
                "inbound event processing failed",
                extra={**extra, "error": reason, "status": status},
                exc_info=not refused,
            )
            return
        await self._mark(lambda: self.inbox.done(item.id, self.clock.now()), extra)
        log.debug("inbound event processed", extra=extra)

    async def _mark(self, write: Callable[[], Awaitable[T]], extra: dict[str, Any]) -> T | None:
        """Record a processed row's outcome, again and again (backing off) while the store fails,
        for up to MARK_RETRY_SECONDS: the event has run, only its mark is missing. If it still
        fails, the row stays claimed and runs again once its lease has ended (at-least-once)."""
        delay = MARK_RETRY_FIRST
        deadline = time.monotonic() + MARK_RETRY_SECONDS
        while True:
            try:
                return await write()
            except Exception as exc:
                if time.monotonic() + delay > deadline:
                    log.error(
                        "inbound event processed but not marked; it runs again after the lease",
                        extra={**extra, "error": f"{type(exc).__name__}: {exc}"[:300]},
                    )
                    return None
                log.warning(
                    "inbound event processed; marking it failed, retrying",
                    extra={**extra, "error": f"{type(exc).__name__}: {exc}"[:300], "retry_in_s": delay},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MARK_RETRY_MAX)

    async def drain(self) -> int:
        """Process every due pending row of the platform, oldest first; returns how many ran."""
        count = 0
        while not self.closing:  # one row at a time: a claim never waits behind others (its lease)
            batch = await self.inbox.claim(1, self.clock.now(), platform=self.platform)
            if not batch:
                break
            for item in batch:
                await self._run(item, None)
            count += len(batch)
        return count

    async def recover_and_drain(self) -> None:
        recovered = await self.inbox.recover(self.clock.now(), self.lease_seconds, platform=self.platform)
        processed = await self.drain()
        if recovered or processed:
            log.info(
                "inbox recovered",
                extra={"platform": self.platform, "recovered": recovered, "processed": processed},
            )

    async def on_startup(self, _: object) -> None:
        self.spawn(self.recover_and_drain(), f"{self.platform}-inbox-recovery")

    async def on_shutdown(self, _: object) -> None:
        self.closing = True
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=self.shutdown_timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning(
                "inbox tasks cancelled at shutdown",
                extra={"platform": self.platform, "cancelled": len(pending)},
            )
