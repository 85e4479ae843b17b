"""The kicked background loop: a kick runs a pass, a failing pass does not end the loop, a stop
ends it promptly (even with a kick pending), and it can be started again."""

from __future__ import annotations

import asyncio

from bot.kicked import KickedLoop


async def test_kicks_run_passes_failures_do_not_end_the_loop_and_stop_is_prompt() -> None:
    passes: list[int] = []
    ran = asyncio.Event()

    async def run() -> None:
        passes.append(len(passes))
        ran.set()
        if len(passes) == 1:
            raise RuntimeError("the first pass fails")

    loop = KickedLoop("test", run, poll=3600)  # only kicks wake it within the test
    loop.start()
    for expected in (1, 2):
        ran.clear()
        loop.kick()
        async with asyncio.timeout(5):
            await ran.wait()
        assert len(passes) == expected
    loop.kick()
    async with asyncio.timeout(5):
        await loop.stop()
    loop.start()  # a stopped loop starts again
    ran.clear()
    loop.kick()
    async with asyncio.timeout(5):
        await ran.wait()
    await loop.stop()
    await loop.stop()  # stopping twice is harmless
