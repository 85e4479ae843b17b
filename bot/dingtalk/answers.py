"""Card-click answers: DingTalk lets the HTTP answer to a click carry the card's new data (within
2 s), which updates the clicked card without an API call (the monthly quota counts every PUT).

The route `expect`s an answer for a click before processing it and waits for it for what is
left of its budget; the processing `offer`s the clicked card's new params once the engine has
run, with a `confirm` coroutine, or `decline`s (nothing to show). The route writes the answer
and calls ``confirm(ok)``: ``ok`` only if the answer was written within DingTalk's deadline.
Only then is the card taken as updated; otherwise the notifier updates it with a PUT like any
other card, so a late or lost answer never leaves a card showing stale buttons.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Confirm = Callable[[bool], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Offer:
    params: dict[str, str]
    confirm: Confirm


class ClickAnswers:
    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Offer | None]] = {}

    def expect(self, key: str) -> asyncio.Future[Offer | None]:
        future: asyncio.Future[Offer | None] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        return future

    def offer(self, key: str, params: dict[str, str], confirm: Confirm) -> bool:
        """True if the route is still waiting: it then calls `confirm` exactly once."""
        future = self._waiting.pop(key, None)
        if future is None or future.done():
            return False
        future.set_result(Offer(params, confirm))
        return True

    def decline(self, key: str) -> None:
        """Nothing to answer with: the route stops waiting at once."""
        future = self._waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self, key: str, future: asyncio.Future[Offer | None], budget: float) -> Offer | None:
        """The offer for `key` within `budget` seconds, else None (and none is taken later)."""
        try:
            async with asyncio.timeout(max(0.0, budget)):
                return await asyncio.shield(future)
        except TimeoutError:
            self._waiting.pop(key, None)
            if future.done() and not future.cancelled():
                return future.result()  # offered in the very same moment: still honoured
            future.cancel()
            return None
