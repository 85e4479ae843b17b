"""Chaos switches both emulators share: API calls that stall (the client's timeout fires), and the
platform's redelivery habits on the callback side (the same callback twice, an old one replayed
late). Error answers (errcodes, HTTP 5xx) are each emulator's own `fail_next` / `fail_ratio`.

No timer is needed in a test: a stall without `seconds` lasts until `release()` (or until the
client gives up and disconnects), so a test awaits events, never the clock.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Stall:
    remaining: int
    path: str | None
    seconds: float | None


class Stalls:
    """`stall_next(n, path=..., seconds=...)`: the next n API calls (to `path` only, if given)
    answer only after `seconds`, or, without seconds, once `release()` is called."""

    def __init__(self) -> None:
        self._pending: list[_Stall] = []
        self._released = asyncio.Event()
        self.stalled = 0  # calls that were held, in all
        self.waiting = 0  # calls held right now
        self.holding = asyncio.Event()  # set while a call is held (tests await it)

    def stall_next(self, n: int, *, path: str | None = None, seconds: float | None = None) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        if seconds is not None and not 0 < seconds <= 600:
            raise ValueError("seconds must be within 0..600")
        self._released = asyncio.Event()
        self._pending.append(_Stall(n, path, seconds))

    def release(self) -> None:
        """Let every held call answer now, and drop the stalls not yet used."""
        self._pending.clear()
        self._released.set()

    async def wait(self, path: str) -> None:
        """Called first thing by an API handler: holds the call when a stall applies."""
        for stall in self._pending:
            if stall.remaining > 0 and (stall.path is None or stall.path == path):
                stall.remaining -= 1
                self._pending = [s for s in self._pending if s.remaining > 0]
                released = self._released
                self.stalled += 1
                self.waiting += 1
                self.holding.set()
                try:
                    if stall.seconds is None:
                        await released.wait()
                    else:
                        async with asyncio.timeout(stall.seconds):
                            await released.wait()
                except TimeoutError:
                    pass
                finally:
                    self.waiting -= 1
                    if not self.waiting:
                        self.holding.clear()
                return


Send = Callable[[], Awaitable[object]]


@dataclass(slots=True)
class Redelivery:
    """How the platform delivers callbacks to the bot: `duplicate_next(n)` sends each of the next n
    callbacks twice (as a platform does when it missed the first answer); `duplicate_ratio(r)`
    does so at random (seeded); every callback is kept (the last `keep`) and `replay(k)` sends the
    k oldest kept again, late, as a platform's retry queue does after an outage."""

    keep: int = 200
    seed: int = 0
    duplicates_sent: int = 0
    replays_sent: int = 0
    _duplicate_next: int = 0
    _duplicate_ratio: float = 0.0
    _kept: deque[Send] = field(default_factory=deque)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - chaos, not security

    def duplicate_next(self, n: int) -> None:
        if n < 0:
            raise ValueError("n must not be negative")
        self._duplicate_next = n

    def duplicate_ratio(self, ratio: float) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("ratio must be within 0..1")
        self._duplicate_ratio = ratio

    @property
    def kept(self) -> int:
        return len(self._kept)

    async def deliver(self, send: Send) -> object:
        """Send one callback (the platform's first attempt); maybe a duplicate right after it.
        Returns what the first attempt returned."""
        self._kept.append(send)
        while len(self._kept) > self.keep:
            self._kept.popleft()
        first = await send()
        twice = self._duplicate_next > 0 or (
            self._duplicate_ratio and self._rng.random() < self._duplicate_ratio
        )
        if twice:
            self._duplicate_next = max(0, self._duplicate_next - 1)
            self.duplicates_sent += 1
            await send()
        return first

    async def replay(self, k: int | None = None) -> int:
        """Send the `k` oldest kept callbacks again (all when None), oldest first; how many were sent."""
        count = len(self._kept) if k is None else min(k, len(self._kept))
        batch = [self._kept.popleft() for _ in range(count)]
        for send in batch:
            await send()
            self.replays_sent += 1
        return count
