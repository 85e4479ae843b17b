"""Card-click answers: DingTalk lets the HTTP answer to a click carry the card's new data (within
2 s), which updates the clicked card without an API call (the monthly quota counts every PUT).

The route `expect`s an answer for a click before processing it and waits for it up to its
budget; the processing `offer`s the clicked card's new params once the engine has run. `offer`
is True only if the route is still waiting, so a late answer is never lost: the processing then
leaves the card to the notifier, which updates it with a PUT like any other card.
"""

from __future__ import annotations

import asyncio
import contextlib


class ClickAnswers:
    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[dict[str, str]]] = {}

    def expect(self, key: str) -> asyncio.Future[dict[str, str]]:
        future: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        return future

    def offer(self, key: str, params: dict[str, str]) -> bool:
        future = self._waiting.pop(key, None)
        if future is None or future.done():
            return False
        future.set_result(params)
        return True

    async def wait(
        self, key: str, future: asyncio.Future[dict[str, str]], budget: float
    ) -> dict[str, str] | None:
        """The answer offered for `key` within `budget` seconds, else None (and none is taken later)."""
        try:
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(future, budget)
            return None
        finally:
            self._waiting.pop(key, None)
            future.cancel()
