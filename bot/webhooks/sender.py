"""The webhook sender: every "pending" webhook call (core.webhook_calls) -> a signed POST.

One pass (`run_once`) claims the due calls (several processes never get the same call; a call
whose worker died is claimed again after the lease) and POSTs them concurrently. The store hands
out the calls of one app about one work order one at a time, in the order of the changes: a
later one waits while an earlier one is pending (being retried), until it is sent or dead.

- The body is the recorded envelope with ``retry_count`` = the attempts made before this one and
  the staff ids of ``msg_data`` (staff_id, handler_id, cc_list) mapped to WeCom userids where the
  directory knows one (core.workorder_changes.with_staff_ids); UTF-8 JSON.
- It goes to the app's CURRENT ``webhook_url`` (so fixing a URL in apps.yaml and retrying the dead
  calls works), signed with its ``webhook_secret`` (bot.webhooks.signature; timeout `timeout`,
  10 s; redirects are not followed). An app that no longer has a webhook makes its calls "dead".
- 2xx: "sent". 4xx but 408 / 429: "dead" at once (logged at ERROR with the status). Transport
  errors, timeouts, 3xx, 408, 429 and 5xx: retried with exponential backoff and full jitter (a
  uniform draw in [0, min(1 h, 5 s * 2^attempts)), at least 1 s; a Retry-After in seconds is the
  floor); the MAX_ATTEMPTS-th failed attempt makes the call "dead" (logged once, at ERROR).

The background loop (`start`) runs a pass when kicked (after a ticket change) and every
`poll_seconds` anyway. Logs name the ticket, webhook id, app, status, attempt and the receiver's
host; never the secret, the body or the URL's path and query.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.kicked import KickedLoop
from bot.webhooks.signature import EVENT_HEADER, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from bot.webhooks.subscriptions import WebhookTarget
from core.ports import Clock, Directory
from core.webhook_calls import DEAD, EVENT, MAX_ATTEMPTS, WebhookCall, WebhookCalls
from core.workorder_changes import wecom_userid_of, with_staff_ids

log = logging.getLogger("ticketbot.webhooks")

BATCH = 20
TIMEOUT = 10.0
LEASE = 60.0  # seconds a claim holds: well above one POST's timeout plus recording its outcome
RETRY_BASE = 5.0
RETRY_MAX = 3600.0
RETRY_MIN = 1.0
MAX_ROUNDS = 50
MAX_ANSWER_BYTES = 4096
_RETRY_4XX = frozenset({408, 429})


def backoff(retry_count: int, rnd: float) -> float:
    """Seconds before the next attempt after `retry_count` failed ones: full jitter, a uniform
    draw (`rnd` in [0, 1)) below min(RETRY_MAX, RETRY_BASE * 2^(retry_count - 1)), at least
    RETRY_MIN."""
    ceiling = min(RETRY_BASE * 2.0 ** min(max(retry_count - 1, 0), 20), RETRY_MAX)
    return max(RETRY_MIN, rnd * ceiling)


def verdict(status: int) -> str:
    """What an HTTP answer means for the call: "sent", "dead" or "retry"."""
    if 200 <= status < 300:
        return "sent"
    if 400 <= status < 500 and status not in _RETRY_4XX:
        return "dead"
    return "retry"


def retry_after(value: str | None) -> float:
    """A Retry-After header in seconds (0 when absent, a date, or not a number), at most RETRY_MAX."""
    if value is None or not value.strip().isdigit():
        return 0.0
    return min(float(value.strip()), RETRY_MAX)


def host_of(url: str) -> str:
    """The receiver's host (and port) for logs: never the path or query (they may carry tokens)."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2] or "?"
    except ValueError:
        return "?"


def body_of(call: WebhookCall, userid_of: Callable[[str], str]) -> bytes:
    """The POST body of `call`: its envelope with retry_count and the staff ids mapped."""
    body: dict[str, Any] = dict(call.payload)
    body["retry_count"] = call.retry_count
    msg = body.get("msg_data")
    if isinstance(msg, Mapping):
        body["msg_data"] = with_staff_ids(msg, userid_of)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class WebhookSender:
    def __init__(
        self,
        calls: WebhookCalls,
        directory: Directory,
        targets: Mapping[str, WebhookTarget],
        clock: Clock,
        *,
        session: aiohttp.ClientSession | None = None,
        worker: str | None = None,
        poll_seconds: float = 5.0,
        timeout: float = TIMEOUT,
        lease: float = LEASE,
        rnd: Callable[[], float] = random.random,
        epoch: Callable[[], float] | None = None,
    ) -> None:
        """`targets`: app name -> its webhook URL and secret now. `session` is the HTTP client (one
        of its own, closed by `stop`, when None). `rnd` draws the backoff's jitter; `epoch` gives
        the signature's timestamp (default: the clock's)."""
        self.calls = calls
        self._directory = directory
        self._targets = dict(targets)
        self._clock = clock
        self._session = session
        self._own_session = session is None
        self.worker = worker or worker_name()
        self._timeout = timeout
        self._lease = lease
        self._rnd = rnd
        self._epoch = epoch
        self._loop = KickedLoop("webhooks", self.drain, poll_seconds)
        self._lock = asyncio.Lock()

    # ---------------------------------------------------------------- loop

    def kick(self) -> None:
        """A ticket changed: run a pass soon. Without any app subscribed nothing is recorded, so a
        change costs no pass (the loop's slow poll still runs for calls left from earlier)."""
        if self._targets:
            self._loop.kick()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def drain(self) -> int:
        """Run passes until nothing is due; returns how many calls were handled. A pass already
        under way (the loop's) is waited for, so after `drain` every due call has been tried."""
        total = 0
        for _ in range(MAX_ROUNDS):
            handled = await self.run_once()
            total += handled
            if handled == 0:
                break
        return total

    async def run_once(self) -> int:
        async with self._lock:
            due = await self.calls.claim_due(self.worker, self._clock.now(), BATCH, self._lease)
            if due:
                await asyncio.gather(*(self._guarded(call) for call in due))
            return len(due)

    # ---------------------------------------------------------------- one call

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _guarded(self, call: WebhookCall) -> None:
        try:
            await self.send(call)
        except Exception as exc:  # a bug must not block the other calls: retried like a failure
            log.exception("webhook call crashed", extra=_extra(call))
            await self._retry(call, f"{type(exc).__name__}: {exc}"[:300], None, 0.0, "")

    async def send(self, call: WebhookCall) -> None:
        """POST the claimed call and record what came of it."""
        target = self._targets.get(call.app)
        if target is None:
            why = f"app {call.app!r} has no webhook_url / webhook_secret configured any more"
            if await self.calls.mark_dead(call.id, self.worker, self._clock.now(), why, attempted=False):
                log.error("webhook call dead", extra=_extra(call, state=DEAD, error=why))
            return
        org = await self._directory.org()
        raw = body_of(call, wecom_userid_of(org))
        stamp = str(int(self._epoch() if self._epoch is not None else self._clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: signature(target.secret, stamp, raw),
            ID_HEADER: call.id,
            EVENT_HEADER: EVENT,
        }
        host = host_of(target.url)
        started = time.monotonic()
        try:
            async with self._http().post(
                target.url,
                data=raw,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                allow_redirects=False,
            ) as resp:
                status = resp.status
                wait = retry_after(resp.headers.get("Retry-After"))
                await resp.content.read(MAX_ANSWER_BYTES)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = (f"{type(exc).__name__}: {exc}".replace(target.url, host))[:300]
            await self._retry(call, error, None, 0.0, host)
            return
        ms = round((time.monotonic() - started) * 1000)
        outcome = verdict(status)
        if outcome == "sent":
            await self.calls.mark_sent(call.id, self.worker, self._clock.now(), status)
            log.info("webhook sent", extra=_extra(call, state="sent", http_status=status, host=host, ms=ms))
        elif outcome == "dead":
            error = f"the receiver refused it: HTTP {status}"
            now = self._clock.now()
            if await self.calls.mark_dead(call.id, self.worker, now, error, response_status=status):
                log.error("webhook call dead", extra=_extra(call, state=DEAD, http_status=status, host=host))
        else:
            await self._retry(call, f"HTTP {status}", status, wait, host)

    async def _retry(self, call: WebhookCall, error: str, status: int | None, wait: float, host: str) -> None:
        attempts = call.retry_count + 1
        delay = max(backoff(attempts, self._rnd()), wait)
        at = self._clock.now() + timedelta(seconds=delay)
        got = await self.calls.retry_later(call.id, self.worker, error, at, response_status=status)
        if got == DEAD:
            log.error(
                "webhook call dead",
                extra=_extra(call, state=DEAD, attempts=attempts, error=error, http_status=status, host=host),
            )
            return
        log.warning(
            "webhook call failed; retrying",
            extra=_extra(
                call, state=got or "lost", error=error, http_status=status, host=host, retry_in_s=round(delay)
            ),
        )


def _extra(call: WebhookCall, **more: object) -> dict[str, object]:
    return {
        "ticket_id": call.ticket_id,
        "webhook_id": call.id,
        "app": call.app,
        "status": call.status,
        "attempt": call.retry_count + 1,
        "max_attempts": MAX_ATTEMPTS,
        **more,
    }
