"""The webhook sender: every "pending" webhook call (core.webhook_calls) -> a signed POST.

One pass (`run_once`, bot.claimed_calls) claims the due calls (several processes never get the
same call; a call whose worker died is claimed again after the lease) and POSTs them
concurrently. The store hands out the calls of one app about one work order one at a time, in
the order of the changes: a later one waits while an earlier one is pending (being retried),
until it is sent or dead.

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

import json
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Unpack
from urllib.parse import urlsplit

from bot.claimed_calls import TRANSPORT_ERRORS, ClaimedCallLoop, Options
from bot.webhooks.signature import EVENT_HEADER, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from bot.webhooks.subscriptions import WebhookTarget
from core.ports import Clock, Directory
from core.webhook_calls import DEAD, EVENT, MAX_ATTEMPTS, WebhookCall, WebhookCalls
from core.workorder_changes import wecom_userid_of, with_staff_ids

log = logging.getLogger("ticketbot.webhooks")

RETRY_BASE = 5.0
RETRY_MAX = 3600.0
RETRY_MIN = 1.0
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


class WebhookSender(ClaimedCallLoop[WebhookCall]):
    def __init__(
        self,
        calls: WebhookCalls,
        directory: Directory,
        targets: Mapping[str, WebhookTarget],
        clock: Clock,
        **options: Unpack[Options],
    ) -> None:
        """`targets`: app name -> its webhook URL and secret now. `options`: the HTTP session,
        worker name, poll, timeout, lease, jitter and signature clock (bot.claimed_calls.Options)."""
        super().__init__("webhooks", calls.claim_due, self.send, self._crashed, clock, **options)
        self.calls = calls
        self._directory = directory
        self._targets = dict(targets)

    def kick(self) -> None:
        """A ticket changed: run a pass soon. Without any app subscribed nothing is recorded, so a
        change costs no pass (the loop's slow poll still runs for calls left from earlier)."""
        if self._targets:
            super().kick()

    # ---------------------------------------------------------------- one call

    async def _crashed(self, call: WebhookCall, exc: Exception) -> None:
        """A bug must not block the other calls: the call is retried like a failure."""
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
        stamp = self._stamp(self._clock.now())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: signature(target.secret, stamp, raw),
            ID_HEADER: call.id,
            EVENT_HEADER: EVENT,
        }
        host = host_of(target.url)
        try:
            reply = await self._post(
                target.url, raw, headers, max_bytes=MAX_ANSWER_BYTES, allow_redirects=False
            )
        except TRANSPORT_ERRORS as exc:
            error = (f"{type(exc).__name__}: {exc}".replace(target.url, host))[:300]
            await self._retry(call, error, None, 0.0, host)
            return
        status, ms = reply.status, reply.ms
        wait = retry_after(reply.headers.get("Retry-After"))
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
