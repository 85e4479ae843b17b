"""Hooks end to end: the real app (a copy of the shipped config whose IT access hook, state 205, points
at a real aiohttp hook target), the hook caller on a fake clock, hook_call_back over signed HTTP.

The app's own background hook loop is stopped in these tests; a HookCaller over the app's runtime
and a FakeClock makes the calls, so retries and backoff need no sleeps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import HOOKS
from bot.hooks.caller import HookCaller, backoff, classify
from core.hook_calls import DEAD, DONE, FAILED, MAX_ATTEMPTS, PENDING, WAITING, HookCall
from core.ticket import SYSTEM_USER, InterveneType, Ticket
from store.hooks import SqlHookCalls
from store.queries import SqlTicketQueries, flow_logs, get_ticket
from tests.api.conftest import Api, config_with_hook, make_api
from tests.fakes import FakeClock

TOKEN = "demo-hook-token"  # config/workflows/it_access.yaml
IT_FIELDS: dict[str, Any] = {"workflow_id": 2, "transition_id": 251, "system": "gitlab"}
IT_FIELDS |= {"access_level": "read", "reason": "code review"}

Answer = Callable[[], web.Response]


def ok(**extra: Any) -> web.Response:
    return web.json_response({"code": 0, "msg": "granted", **extra})


@dataclass
class Target:
    """The hook receiver: checks both signatures, records the call, answers from `answers` (then ok)."""

    answers: list[Answer] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        stamp = request.headers["timestamp"]
        md5 = hashlib.md5((stamp + TOKEN).encode()).hexdigest()  # noqa: S324 - loonflow's scheme
        assert hmac.compare_digest(request.headers["signature"], md5)
        mac = hmac.new(TOKEN.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["X-Ticketbot-Signature"], f"sha256={mac}")
        self.bodies.append(json.loads(raw))
        self.headers.append(dict(request.headers))
        return self.answers.pop(0)() if self.answers else ok()


@dataclass
class World:
    api: Api
    target: Target
    caller: HookCaller
    clock: FakeClock

    @property
    def calls(self) -> SqlHookCalls:
        return SqlHookCalls(self.api.runtime.db)

    async def ticket(self, ticket_id: int) -> Ticket:
        found = await get_ticket(self.api.runtime.db, ticket_id)
        assert found is not None
        return found

    async def ok(self, method: str, path: str, username: str, body: Any = None) -> Any:
        status, answer = await self.api.call(method, path, username=username, json=body)
        assert (status, answer["code"]) == (200, 0), answer
        return answer["data"]

    async def to_hook_state(self) -> int:
        """An IT access request that just entered 205 (its hook call recorded, not made yet)."""
        ticket_id = int((await self.ok("POST", "tickets", "liuyang", IT_FIELDS))["ticket_id"])
        await self.ok("PATCH", f"tickets/{ticket_id}", "wangqiang", {"transition_id": 252})
        await self.ok("POST", f"tickets/{ticket_id}/accept", "sunhao")
        await self.ok("PATCH", f"tickets/{ticket_id}", "sunhao", {"transition_id": 256, "ops_note": "dev"})
        assert (await self.ticket(ticket_id)).state_id == 205
        return ticket_id

    async def callback(self, ticket_id: int, body: dict[str, Any]) -> tuple[int, Any]:
        return await self.api.call("POST", f"tickets/{ticket_id}/hook_call_back", username="admin", json=body)

    async def hook_calls(self, ticket_id: int) -> list[HookCall]:
        return list(await self.calls.for_ticket(ticket_id))

    async def later(self, **kw: float) -> int:
        self.clock.advance(**kw)
        return await self.caller.drain()


async def _world(
    aiohttp_client: Any, aiohttp_server: Any, database_url: str, tmp_path: Path, wait: bool
) -> tuple[World, aiohttp.ClientSession]:
    target = Target()
    app = web.Application()
    app.router.add_post("/hook", target.handle)
    server: TestServer = await aiohttp_server(app)
    config = config_with_hook(tmp_path, str(server.make_url("/hook")))
    if not wait:
        path = config / "workflows" / "it_access.yaml"
        text = path.read_text(encoding="utf-8")
        assert "        wait: true\n" in text
        path.write_text(text.replace("        wait: true\n", "        wait: false\n"), encoding="utf-8")
    api = await make_api(aiohttp_client, database_url, config)
    await api.client.app[HOOKS].stop()  # this test makes the calls itself, on a fake clock
    runtime = api.runtime
    clock = FakeClock(datetime.now(UTC) + timedelta(seconds=1))
    session = aiohttp.ClientSession()
    caller = HookCaller(
        SqlHookCalls(runtime.db),
        runtime.service,
        SqlTicketQueries(runtime.db),
        runtime.catalog,
        clock,
        "https://bot.example.com",
        session=session,
        worker="test-worker",
        rnd=lambda: 0.5,
    )
    return World(api, target, caller, clock), session


@pytest.fixture
async def waiting(
    aiohttp_client: Any, aiohttp_server: Any, database_url: str, tmp_path: Path
) -> AsyncIterator[World]:
    world, session = await _world(aiohttp_client, aiohttp_server, database_url, tmp_path, wait=True)
    yield world
    await session.close()


@pytest.fixture
async def at_once(
    aiohttp_client: Any, aiohttp_server: Any, database_url: str, tmp_path: Path
) -> AsyncIterator[World]:
    world, session = await _world(aiohttp_client, aiohttp_server, database_url, tmp_path, wait=False)
    yield world
    await session.close()


# ------------------------------------------------------------------------------------ wait: false


async def test_wait_false_advances_at_once(at_once: World, caplog: pytest.LogCaptureFixture) -> None:
    w = at_once
    ticket_id = await w.to_hook_state()
    [pending] = await w.hook_calls(ticket_id)
    assert (pending.status, pending.wait) == (PENDING, False)
    assert pending.url.startswith("http://127.0.0.1:") and pending.url.endswith("/hook")
    with caplog.at_level(logging.INFO, logger="ticketbot.hooks"):
        assert await w.caller.drain() == 1
    t = await w.ticket(ticket_id)
    assert (t.state_id, t.participants) == (206, ("liuyang",))
    last = (await flow_logs(w.api.runtime.db, ticket_id, desc=True))[0]
    assert (last.actor, last.intervene_type, last.transition_id, last.suggestion) == (
        SYSTEM_USER,
        InterveneType.HOOK,
        258,
        "granted",
    )
    [done] = await w.hook_calls(ticket_id)
    assert (done.status, done.attempts, done.response_status) == (DONE, 0, 200)
    [body] = w.target.bodies
    assert (body["ticket_id"], body["id"], body["state_id"], body["workflow_id"]) == (
        ticket_id,
        ticket_id,
        205,
        2,
    )
    assert (body["sn"], body["creator"], body["participant_type_id"]) == (t.sn, "liuyang", 10)
    assert (body["system"], body["access_level"], body["ops_note"]) == ("gitlab", "read", "dev")
    assert (body["call_id"], body["wait"], body["extra_info"]) == (done.call_id, False, "grant-access")
    assert body["callback_url"] == f"https://bot.example.com/api/v1.0/tickets/{ticket_id}/hook_call_back"
    assert w.target.headers[0]["X-Ticketbot-Call-Id"] == done.call_id
    everything = json.dumps(body) + repr(w.target.headers) + caplog.text
    assert TOKEN not in everything
    assert f"'call_id': '{done.call_id}'" in repr([r.__dict__ for r in caplog.records])
    assert await w.caller.drain() == 0  # called exactly once


async def test_an_answer_the_engine_refuses_is_a_failure(at_once: World) -> None:
    """205 lets nobody set ops_note: the hook's field_value is refused, recorded as its failure."""
    w = at_once
    ticket_id = await w.to_hook_state()
    w.target.answers.append(lambda: ok(field_value={"ops_note": "account dev-42"}))
    await w.caller.drain()
    t = await w.ticket(ticket_id)
    assert (t.state_id, t.fields["ops_note"], t.script_run_last_result) == (205, "dev", False)
    [c] = await w.hook_calls(ticket_id)
    assert c.status == FAILED and c.last_error.startswith("the hook's answer was refused: ")
    last = (await flow_logs(w.api.runtime.db, ticket_id, desc=True))[0]
    assert (last.intervene_type, last.suggestion) == (InterveneType.HOOK, c.last_error)


async def test_failing_twice_then_succeeding_calls_three_times_and_advances_once(at_once: World) -> None:
    w = at_once
    ticket_id = await w.to_hook_state()
    w.target.answers += [lambda: web.Response(status=503), lambda: web.json_response({}, status=500)]
    assert await w.caller.drain() == 1
    [c] = await w.hook_calls(ticket_id)
    assert (c.status, c.attempts, c.response_status, c.last_error) == (PENDING, 1, 503, "HTTP 503")
    assert c.next_attempt_at == w.clock.now() + timedelta(seconds=backoff(0, 0.5))
    assert await w.later(seconds=4) == 0  # not due yet
    assert await w.later(seconds=1) == 1
    assert (await w.hook_calls(ticket_id))[0].attempts == 2
    assert (await w.ticket(ticket_id)).state_id == 205
    assert await w.later(seconds=9) == 0
    assert await w.later(seconds=1) == 1
    assert len(w.target.bodies) == 3
    assert len({b["call_id"] for b in w.target.bodies}) == 1  # the same call, retried
    assert (await w.ticket(ticket_id)).state_id == 206
    hooks = [
        x for x in await flow_logs(w.api.runtime.db, ticket_id) if x.intervene_type == InterveneType.HOOK
    ]
    assert len(hooks) == 1
    assert await w.later(hours=2) == 0
    assert len(w.target.bodies) == 3


async def test_a_definite_refusal_fails_at_once(at_once: World) -> None:
    w = at_once
    ticket_id = await w.to_hook_state()
    w.target.answers.append(lambda: web.json_response({"code": 1, "msg": "no such group"}))
    await w.caller.drain()
    t = await w.ticket(ticket_id)
    assert (t.state_id, t.script_run_last_result) == (205, False)
    [c] = await w.hook_calls(ticket_id)
    assert (c.status, c.last_error) == (FAILED, "no such group")
    last = (await flow_logs(w.api.runtime.db, ticket_id, desc=True))[0]
    assert (last.intervene_type, last.suggestion) == (InterveneType.HOOK, "no such group")
    assert await w.later(hours=2) == 0 and len(w.target.bodies) == 1  # never retried by itself


async def test_a_dead_hook_leaves_the_ticket_and_retry_script_calls_again(at_once: World) -> None:
    w = at_once
    ticket_id = await w.to_hook_state()
    w.target.answers += [lambda: web.Response(status=502)] * MAX_ATTEMPTS
    await w.caller.drain()
    for _ in range(MAX_ATTEMPTS - 1):
        assert await w.later(hours=2) == 1
    assert len(w.target.bodies) == MAX_ATTEMPTS
    [dead] = await w.hook_calls(ticket_id)
    assert (dead.status, dead.attempts) == (DEAD, MAX_ATTEMPTS - 1)
    assert dead.last_error.startswith(f"the hook failed {MAX_ATTEMPTS} times; last: HTTP 502")
    t = await w.ticket(ticket_id)
    assert (t.state_id, t.script_run_last_result) == (205, False)
    last = (await flow_logs(w.api.runtime.db, ticket_id, desc=True))[0]
    assert (last.actor, last.intervene_type) == (SYSTEM_USER, InterveneType.HOOK)
    assert f"failed {MAX_ATTEMPTS} times" in last.suggestion
    assert await w.later(hours=24) == 0

    await w.ok("POST", f"tickets/{ticket_id}/retry_script", "liuyang")
    old, new = await w.hook_calls(ticket_id)
    assert (old.status, new.status, new.attempts) == (DEAD, PENDING, 0)
    assert await w.later(seconds=1) == 1
    assert len(w.target.bodies) == MAX_ATTEMPTS + 1
    assert w.target.bodies[-1]["call_id"] == new.call_id
    assert (await w.ticket(ticket_id)).state_id == 206


async def test_a_call_for_a_ticket_that_moved_on_is_not_made(at_once: World) -> None:
    w = at_once
    ticket_id = await w.to_hook_state()
    await w.ok("PUT", f"tickets/{ticket_id}/state", "admin", {"state_id": 204})
    assert await w.caller.drain() == 1
    assert w.target.bodies == []
    [c] = await w.hook_calls(ticket_id)
    assert c.status == FAILED and c.last_error.startswith("cancelled: ")
    assert (await w.ticket(ticket_id)).state_id == 204


async def test_a_crashed_worker_s_claim_is_taken_over_after_the_lease(at_once: World) -> None:
    w = at_once
    ticket_id = await w.to_hook_state()
    [claimed] = await w.calls.claim_due("dead-worker", w.clock.now(), 10, 60)
    assert await w.caller.drain() == 0  # leased to a worker that is gone
    assert await w.later(seconds=61) == 1
    assert (await w.ticket(ticket_id)).state_id == 206
    assert [c.status for c in await w.hook_calls(ticket_id)] == [DONE]
    assert claimed.claimed_by == "dead-worker"


# ------------------------------------------------------------------------------------- wait: true


async def test_wait_true_waits_for_the_callback(waiting: World) -> None:
    w = waiting
    ticket_id = await w.to_hook_state()
    await w.caller.drain()
    [c] = await w.hook_calls(ticket_id)
    assert (c.status, c.response_status) == (WAITING, 200)
    assert (await w.ticket(ticket_id)).state_id == 205
    assert await w.later(hours=2) == 0  # a waiting call is not called again
    await w.ok(
        "POST",
        f"tickets/{ticket_id}/hook_call_back",
        "admin",
        {"result": True, "msg": "granted", "call_id": c.call_id},
    )
    t = await w.ticket(ticket_id)
    assert (t.state_id, t.participants) == (206, ("liuyang",))
    [done] = await w.hook_calls(ticket_id)
    assert (done.status, done.claimed_by) == (DONE, "")
    last = (await flow_logs(w.api.runtime.db, ticket_id, desc=True))[0]
    assert (last.actor, last.transition_id, last.suggestion) == ("hook", 258, "granted")
    _, body = await w.callback(ticket_id, {"result": True, "call_id": c.call_id})  # once only
    assert body["code"] == -1 and (await w.ticket(ticket_id)).state_id == 206


async def test_a_false_callback_fails_the_call_and_retry_script_calls_again(waiting: World) -> None:
    w = waiting
    ticket_id = await w.to_hook_state()
    await w.caller.drain()
    await w.ok("POST", f"tickets/{ticket_id}/hook_call_back", "admin", {"result": False, "msg": "LDAP down"})
    t = await w.ticket(ticket_id)
    assert (t.state_id, t.script_run_last_result) == (205, False)
    [failed] = await w.hook_calls(ticket_id)
    assert (failed.status, failed.last_error) == (FAILED, "LDAP down")
    await w.ok("POST", f"tickets/{ticket_id}/retry_script", "liuyang")
    await w.caller.drain()
    assert len(w.target.bodies) == 2
    await w.ok("POST", f"tickets/{ticket_id}/hook_call_back", "admin", {"result": True})
    assert (await w.ticket(ticket_id)).state_id == 206


async def _unchanged(w: World, ticket_id: int, before: Ticket, answer: tuple[int, Any], msg: str) -> None:
    status, body = answer
    assert (status, body["code"], body["msg"]) == (200, -1, msg)
    after = await w.ticket(ticket_id)
    assert (after.state_id, after.version, after.script_run_last_result) == (
        before.state_id,
        before.version,
        before.script_run_last_result,
    )


async def test_callbacks_for_no_call_made_are_refused(
    waiting: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ticketbot.api")
    w = waiting
    ticket_id = await w.to_hook_state()
    nothing = f"no hook call is waiting for ticket {ticket_id} in state 205"
    before = await w.ticket(ticket_id)
    # the hook has not been called yet: a callback cannot be its answer
    await _unchanged(w, ticket_id, before, await w.callback(ticket_id, {"result": True}), nothing)
    await w.caller.drain()
    [c] = await w.hook_calls(ticket_id)
    wrong = {"result": True, "call_id": c.call_id[:-1] + ("A" if c.call_id[-1] != "A" else "B")}
    await _unchanged(w, ticket_id, before, await w.callback(ticket_id, wrong), nothing)
    assert (await w.hook_calls(ticket_id))[0].status == WAITING
    # the call was made for the ticket's earlier visit of 205: the new visit's call is not made yet
    await w.ok("PUT", f"tickets/{ticket_id}/state", "admin", {"state_id": 204})
    await w.ok("PUT", f"tickets/{ticket_id}/state", "admin", {"state_id": 205})
    before = await w.ticket(ticket_id)
    answer = await w.callback(ticket_id, {"result": True, "call_id": c.call_id})
    await _unchanged(w, ticket_id, before, answer, nothing)
    statuses = [x.status for x in await w.hook_calls(ticket_id)]
    assert statuses == [FAILED, PENDING]  # the old call superseded, the new one not made yet
    refusals = [r.__dict__ for r in caplog.records if r.getMessage() == "api request refused"]
    assert [(r["status"], r["why"]) for r in refusals] == [(409, nothing)] * 3


async def test_a_callback_for_another_state_is_refused(waiting: World) -> None:
    w = waiting
    ticket_id = await w.to_hook_state()
    await w.caller.drain()
    [c] = await w.hook_calls(ticket_id)
    await w.ok("PUT", f"tickets/{ticket_id}/state", "admin", {"state_id": 204})
    before = await w.ticket(ticket_id)
    _, body = await w.callback(ticket_id, {"result": True, "call_id": c.call_id})
    assert body["code"] == -1 and "not waiting for a hook" in body["msg"]
    after = await w.ticket(ticket_id)
    assert (after.state_id, after.version) == (204, before.version)


# ------------------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("status", "raw", "wait", "kind"),
    [
        (200, b'{"code": 0, "msg": "ok"}', False, "ok"),
        (200, b'{"code": "0"}', False, "ok"),
        (200, b'{"code": 1, "msg": "no"}', False, "fail"),
        (200, b"<html>", False, "fail"),
        (200, b"", True, "ok"),
        (204, b"", True, "ok"),
        (200, b'{"code": -1}', True, "fail"),
        (404, b"", False, "fail"),
        (401, b"", True, "fail"),
        (408, b"", False, "retry"),
        (429, b"", True, "retry"),
        (500, b'{"code": 0}', False, "retry"),
        (503, b"", True, "retry"),
    ],
)
def test_classify(status: int, raw: bytes, wait: bool, kind: str) -> None:
    assert classify(status, raw, wait=wait).kind == kind


def test_backoff_doubles_with_jitter_up_to_an_hour() -> None:
    assert [round(backoff(n, 0.5)) for n in range(5)] == [5, 10, 20, 40, 80]
    assert backoff(3, 0.0) == pytest.approx(32.0) and backoff(3, 0.999999) == pytest.approx(48.0, rel=1e-5)
    assert backoff(30, 0.5) == 3600.0
