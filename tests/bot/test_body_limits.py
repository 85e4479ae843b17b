"""Every route that takes a body refuses one over its limit, reads no further and changes nothing.

The whole demo app (both platforms, the sidebar, the ticket page, both APIs) is walked through its
router, sub-applications included, so a route added later is covered without editing this test.
Each writing route (POST, PUT, PATCH, DELETE) gets a body one byte over the app's 1 MiB limit,
once with a Content-Length and once chunked (no length announced); the platform callbacks and the
sidebar get one byte over their own 64 KiB limit too. Every answer must be a 4xx without a
traceback, and no table may change (tests/db_snapshot.py: every row of every table).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.web_urldispatcher import PrefixedSubAppResource

from bot.demo import DINGTALK_APP_SECRET, Demo
from bot.wecom.callback import MAX_BODY_BYTES as CALLBACK_MAX
from config.placeholders import DEMO_API_TOKEN
from emulator.dingtalk import card_callback_signature, robot_sign
from tests.bot.demo_harness import settle
from tests.case_counts import case_counts
from tests.db_snapshot import DatabaseSnapshots

APP_MAX = 1024 * 1024  # bot/app.py: the application's client_max_size
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# signed as their callers sign, these read the body: the refusal must be for its size. The sidebar
# and the ticket page refuse a request without a session or signed link before reading anything.
READ_FIRST = ("/api/", "/open-api/", "/wecom/callback", "/dingtalk/robot", "/dingtalk/card")
SMALL_LIMIT = ("/wecom/", "/dingtalk/", "/sidebar/")  # callbacks and the sidebar: 64 KiB
_PARAM = re.compile(r"\{([^}:]+)(:[^}]*)?\}")
TRACEBACK = ("Traceback (most recent call last)", 'File "', '.py", line')


def writing_routes(app: web.Application) -> Iterator[tuple[str, str]]:
    """(method, path with every {param} filled in) of every writing route, sub-apps included (their
    resources carry the prefix already)."""
    for resource in app.router.resources():
        if isinstance(resource, PrefixedSubAppResource):
            yield from writing_routes(resource._app)
            continue
        path = _PARAM.sub("1", resource.canonical)
        for route in resource:
            if route.method in WRITES:
                yield route.method, path


def _headers(path: str) -> dict[str, str]:
    """Signed as the demo app and DingTalk would sign (no signature here covers the body), so the
    route goes on to read it; WeCom signs the encrypted body, so its callback reads it first."""
    headers = {"Content-Type": "application/json"}
    ms = str(int(time.time() * 1000))
    if path == "/dingtalk/robot":
        headers |= {"timestamp": ms, "sign": robot_sign(ms, DINGTALK_APP_SECRET)}
    if path == "/dingtalk/card":
        sig = card_callback_signature(ms, DINGTALK_APP_SECRET)
        headers |= {"x-ddpaas-signature-timestamp": ms, "x-ddpaas-signature": sig}
    if path.startswith(("/api/", "/open-api/")):
        ts = str(int(time.time()))
        sig = hashlib.md5((ts + DEMO_API_TOKEN).encode()).hexdigest()  # noqa: S324 - loonflow's scheme
        headers |= {"appname": "demo", "timestamp": ts, "signature": sig, "username": "admin"}
    return headers


def _refused(path: str, status: int, text: str) -> bool:
    """A 4xx, or the loonflow dialect's non-strict refusal (HTTP 200, code -1)."""
    if 400 <= status < 500:
        return True
    return path.startswith("/api/v1.0/") and status == 200 and json.loads(text).get("code") == -1


def _chunks(size: int) -> Any:
    async def gen() -> AsyncIterator[bytes]:
        left = size
        while left:
            n = min(left, 64 * 1024)
            yield b"a" * n
            left -= n

    return gen()


async def test_every_writing_route_refuses_a_body_over_its_limit(
    demo: Demo, request: pytest.FixtureRequest
) -> None:
    routes = sorted(set(writing_routes(demo.app)))
    paths = {path for _, path in routes}
    # the walk reached every surface (a refactor that hid one from the router would show here)
    for expected in ("/wecom/callback", "/dingtalk/robot", "/dingtalk/card", "/api/v1.0/tickets"):
        assert expected in paths, sorted(paths)
    assert any(p.startswith("/open-api/workorder/") for p in paths)
    assert any(p.startswith("/sidebar/") for p in paths)
    await settle(demo)  # the demo's start-up (customers announced by WeCom) is done
    snapshots = DatabaseSnapshots(demo.settings.database_url)
    before = await snapshots.take()
    assert len(before.tables) > 10
    base = demo.urls.ticketbot.rstrip("/")
    answers: list[tuple[str, str, str, int]] = []
    async with aiohttp.ClientSession() as session:
        for method, path in routes:
            sizes = [("1 MiB + 1", APP_MAX + 1, True), ("1 MiB + 1 chunked", APP_MAX + 1, False)]
            if path.startswith(SMALL_LIMIT):
                sizes.append(("64 KiB + 1", CALLBACK_MAX + 1, True))
            for label, size, with_length in sizes:
                data: Any = b"a" * size if with_length else _chunks(size)
                try:
                    async with session.request(
                        method, base + path, data=data, headers=_headers(path)
                    ) as resp:
                        text = await resp.text(errors="replace")
                        answers.append((method, path, label, resp.status))
                        if path.startswith(READ_FIRST):
                            assert "larger than" in text, (method, path, label, resp.status, text[:300])
                        assert _refused(path, resp.status, text), (
                            method,
                            path,
                            label,
                            resp.status,
                            text[:300],
                        )
                        assert not any(t in text for t in TRACEBACK), (method, path, text[:300])
                except aiohttp.ClientOSError:
                    # the server answered early (413) and closed while the rest was still being sent
                    answers.append((method, path, label, 413))
    await settle(demo)
    try:
        assert before.diff(await snapshots.take()) == []
    finally:
        await snapshots.dispose()
    sized = sum(1 for a in answers if a[1].startswith(READ_FIRST))
    backend = "postgres" if demo.settings.database_url.startswith("postgresql") else "sqlite"
    case_counts(request, "ticketbot-body-limits", "body limits").lines.append(
        f"[{backend}] {len(routes)} writing routes, {len(answers)} oversized requests refused, "
        f"{sized} of them for their size (the others by a session or link check that reads no body)"
    )
