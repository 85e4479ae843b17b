"""A claimed call loop: the plumbing the hook caller (bot.hooks.caller) and the webhook sender
(bot.webhooks.sender) share; what a call posts, how it is signed, what its answer means and how
its outcome is recorded stay in those modules.

The port is small: `claim_due` (the store's: claims up to `limit` due calls for `worker` for
`lease` seconds, so several processes never get the same call and a call whose worker died is
claimed again after the lease), `handle` (make one claimed call and record what came of it) and
`crashed` (what to do with a call whose `handle` raised: called inside the ``except`` block, so it
may log the traceback; a bug in one call must not block the others).

- `run_once` claims one batch (BATCH) and handles its calls concurrently; one pass at a time.
- `drain` runs passes until nothing is due (at most MAX_ROUNDS); a pass already under way (the
  loop's) is waited for, so after `drain` every due call has been handled.
- `start` runs `drain` in the background when kicked and every `poll_seconds` anyway
  (bot.kicked); `stop` ends that and closes the HTTP session if it is the loop's own.
- `_post` makes one POST on the shared session (the one given, or one of its own made on first use)
  and reads at most `max_bytes` of the answer; a transport error or timeout raises one of
  TRANSPORT_ERRORS.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypedDict, TypeVar

import aiohttp

from bot.kicked import KickedLoop
from core.ports import Clock

BATCH = 20
MAX_ROUNDS = 50
TIMEOUT = 10.0
LEASE = 60.0  # seconds a claim holds: well above one call's timeout plus recording its outcome
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)

C = TypeVar("C")
C_co = TypeVar("C_co", covariant=True)


class ClaimDue(Protocol[C_co]):
    """The store's claim: up to `limit` due calls, claimed by `worker` for `lease` seconds."""

    def __call__(self, worker: str, now: datetime, limit: int, lease: float) -> Awaitable[Sequence[C_co]]: ...


class Options(TypedDict, total=False):
    """The keyword options of a claimed call loop (and of the callers built on it): `session` is
    the HTTP client (one of its own, closed by `stop`, when None); `worker` names this process on
    its claims; `rnd` draws the backoff's jitter; `epoch` gives the signature's timestamp (default:
    the clock's)."""

    session: aiohttp.ClientSession | None
    worker: str | None
    poll_seconds: float
    timeout: float
    lease: float
    rnd: Callable[[], float]
    epoch: Callable[[], float] | None


@dataclass(frozen=True, slots=True)
class Reply:
    """What a POST came to: its HTTP status and headers, the start of its body, how long it took."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    ms: int


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class ClaimedCallLoop(Generic[C]):
    def __init__(
        self,
        name: str,
        claim_due: ClaimDue[C],
        handle: Callable[[C], Awaitable[None]],
        crashed: Callable[[C, Exception], Awaitable[None]],
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
        """`name` names the background loop; the other keywords are `Options`."""
        self._claim_due = claim_due
        self._handle = handle
        self._crashed = crashed
        self._clock = clock
        self._session = session
        self._own_session = session is None
        self.worker = worker or worker_name()
        self._timeout = timeout
        self._lease = lease
        self._rnd = rnd
        self._epoch = epoch
        self._loop = KickedLoop(name, self.drain, poll_seconds)
        self._lock = asyncio.Lock()

    # ---------------------------------------------------------------- loop

    def kick(self) -> None:
        """Something changed: run a pass soon."""
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
        under way (the loop's) is waited for, so after `drain` every due call has been handled."""
        total = 0
        for _ in range(MAX_ROUNDS):
            handled = await self.run_once()
            total += handled
            if handled == 0:
                break
        return total

    async def run_once(self) -> int:
        async with self._lock:
            due = await self._claim_due(self.worker, self._clock.now(), BATCH, self._lease)
            if due:
                await asyncio.gather(*(self._guarded(call) for call in due))
            return len(due)

    async def _guarded(self, call: C) -> None:
        try:
            await self._handle(call)
        except Exception as exc:
            await self._crashed(call, exc)

    # ---------------------------------------------------------------- HTTP

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _stamp(self, now: datetime) -> str:
        """The signature's timestamp (epoch seconds) of an attempt made at `now`."""
        return str(int(self._epoch() if self._epoch is not None else now.timestamp()))

    async def _post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        max_bytes: int,
        allow_redirects: bool = True,
    ) -> Reply:
        """POST `body` to `url` (timeout `timeout`); raises one of TRANSPORT_ERRORS when no answer came."""
        started = time.monotonic()
        async with self._http().post(
            url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            allow_redirects=allow_redirects,
        ) as resp:
            status = resp.status
            answer = await resp.content.read(max_bytes)
        return Reply(status, resp.headers, answer, round((time.monotonic() - started) * 1000))
