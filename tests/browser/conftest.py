"""Real-browser tests: Playwright for Python driving Debian's chromium (scripts/ensure-chromium.sh
installs it; Playwright's own browser download is never used), against the demo as `make demo`
runs it (bot.demo.running_demo: ticketbot + the emulator with its web chat page).

A failing test leaves a screenshot of every page it opened in var/test-artifacts/.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import AsyncIterator, Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from bot.demo import Demo, running_demo

CHROMIUM = os.environ.get("TICKETBOT_CHROMIUM", "/usr/bin/chromium")
# Flags for a closed network (no background fetches to hosts that cannot be reached) and root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
    return report


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/ensure-chromium.sh` (make test does)")
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def demo(database_url: str) -> AsyncIterator[Demo]:
    async with running_demo(
        port=free_port(), emulator_port=free_port(), database_url=database_url
    ) as running:
        yield running


@pytest.fixture
async def new_page(request: pytest.FixtureRequest, browser: Browser) -> AsyncIterator[Callable[..., Any]]:
    """`await new_page()`: a page in a context of its own (like a separate phone); every page of
    those contexts is screenshotted into var/test-artifacts/ when the test fails."""
    contexts: list[BrowserContext] = []

    async def make(*, width: int = 420, height: int = 860) -> Page:
        context = await browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return await context.new_page()

    yield make
    if request.node.stash.get(FAILED, False):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        pages = [page for context in contexts for page in context.pages]  # tabs opened by the test too
        for n, page in enumerate(pages):
            if not page.is_closed():
                await page.screenshot(path=str(ARTIFACTS / f"{stem}-{n}.png"), full_page=True)
    for context in contexts:
        await context.close()
