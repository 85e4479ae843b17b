"""The whole demo (ticketbot and the platform emulator, as `ticketbot demo` runs them) for tests,
on the suite's `database_url` (SQLite and PostgreSQL): the `demo` fixture and `settle`."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from bot.app import NOTIFIER
from bot.demo import Demo, running_demo
from bot.dingtalk.routes import DINGTALK_CALLBACKS
from bot.wecom.routes import WECOM_CALLBACKS

WAIT = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def demo(database_url: str) -> AsyncIterator[Demo]:
    async with running_demo(
        port=free_port(), emulator_port=free_port(), database_url=database_url
    ) as running:
        yield running


async def settle(demo: Demo) -> None:
    """Until the bot has processed every callback it acknowledged and sent every card it planned."""
    async with asyncio.timeout(WAIT):
        while tasks := set(demo.app[WECOM_CALLBACKS].tasks) | set(demo.app[DINGTALK_CALLBACKS].tasks):
            await asyncio.gather(*tasks, return_exceptions=True)
        await demo.app[NOTIFIER].drain()
