"""A background loop that runs a pass when kicked, and every `poll` seconds anyway (the safety net
for a kick that was missed, e.g. one from another worker process). The notifier and the hook caller
each run one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0


class KickedLoop:
    def __init__(self, name: str, run: Callable[[], Awaitable[object]], poll: float) -> None:
        self.name = name
        self._run = run
        self._poll = poll
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def kick(self) -> None:
        """Something changed: run a pass soon."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        """Stop the loop: flagged as well as cancelled (a cancellation that lands together with a
        kick could otherwise be lost), and waited for at most STOP_TIMEOUT seconds."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
        if not done:
            log.warning("background loop did not stop in time; left behind", extra={"loop": self.name})

    async def _loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()
            if self._stopping:
                return
            self._wake.clear()
            try:
                await self._run()
            except Exception:
                log.exception("background pass failed; retrying on the next poll", extra={"loop": self.name})
