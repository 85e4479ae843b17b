"""The claimed call loop (bot.claimed_calls) on its own, over a fake claim and handler: batches and
rounds, a crashing call handed to `crashed` inside its except block without blocking the others,
the HTTP session (its own closed by `stop`, a given one left open) and one POST (the answer cut at
`max_bytes`, redirects followed or not). The hook caller and the webhook sender built on it have
their end-to-end tests (test_hooks.py, test_webhooks.py)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.claimed_calls import BATCH, LEASE, TRANSPORT_ERRORS, ClaimedCallLoop
from tests.fakes import FakeClock


class Calls:
    """A fake store and handler: `due` is handed out BATCH at a time; call "boom" raises."""

    def __init__(self, due: list[str]) -> None:
        self.due = due
        self.claims: list[tuple[str, datetime, int, float]] = []
        self.handled: list[str] = []
        self.crashed: list[tuple[str, str, bool]] = []

    async def claim_due(self, worker: str, now: datetime, limit: int, lease: float) -> Sequence[str]:
        self.claims.append((worker, now, limit, lease))
        batch, self.due = self.due[:limit], self.due[limit:]
        return batch

    async def handle(self, call: str) -> None:
        if call == "boom":
            raise RuntimeError("a bug")
        self.handled.append(call)

    async def on_crash(self, call: str, exc: Exception) -> None:
        self.crashed.append((call, str(exc), sys.exc_info()[1] is exc))


def _loop(calls: Calls, **options: Any) -> ClaimedCallLoop[str]:
    return ClaimedCallLoop("test", calls.claim_due, calls.handle, calls.on_crash, FakeClock(), **options)


async def test_drain_claims_batches_until_none_and_a_crash_blocks_nothing() -> None:
    due = [f"c{i}" for i in range(BATCH + 5)]
    due[3] = "boom"
    calls = Calls(due)
    loop = _loop(calls, worker="w1")
    assert await loop.drain() == BATCH + 5
    assert [(w, limit, lease) for w, _, limit, lease in calls.claims] == [("w1", BATCH, LEASE)] * 3
    assert sorted(calls.handled) == sorted(c for c in due if c != "boom")
    assert calls.crashed == [("boom", "a bug", True)]  # inside the except block: it may log the traceback
    assert await loop.run_once() == 0


async def _answer(request: web.Request) -> web.Response:
    return web.Response(status=201, body=b"x" * 100, headers={"Retry-After": "7"})


async def _moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/answer")


async def test_post_reads_at_most_max_bytes_and_follows_redirects_only_if_asked(aiohttp_server: Any) -> None:
    app = web.Application()
    app.router.add_post("/answer", _answer)
    app.router.add_post("/moved", _moved)
    app.router.add_get("/answer", _answer)
    server = await aiohttp_server(app)
    loop = _loop(Calls([]), timeout=5.0)
    url = str(server.make_url("/answer"))
    reply = await loop._post(url, b"{}", {}, max_bytes=10)
    assert (reply.status, reply.body, reply.headers.get("retry-after")) == (201, b"x" * 10, "7")
    assert reply.ms >= 0
    moved = str(server.make_url("/moved"))
    assert (await loop._post(moved, b"{}", {}, max_bytes=10, allow_redirects=False)).status == 302
    assert (await loop._post(moved, b"{}", {}, max_bytes=10)).status == 201
    own = loop._http()
    await loop.stop()  # its own session: closed
    assert own.closed
    await server.close()
    with pytest.raises(TRANSPORT_ERRORS):  # nobody listens any more
        await loop._post(url, b"{}", {}, max_bytes=10)
    await loop.stop()


async def test_a_given_session_is_left_open() -> None:
    session = aiohttp.ClientSession()
    try:
        loop = _loop(Calls([]), session=session)
        assert loop._http() is session
        loop.start()
        await loop.stop()
        assert not session.closed
    finally:
        await session.close()
