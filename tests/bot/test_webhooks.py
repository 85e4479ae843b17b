"""work_order_change webhooks end to end: the real app (a copy of the shipped config whose apps.yaml
subscribes apps to a real aiohttp receiver), work orders changed over the loonflow API and the
service, the webhook sender on a fake clock, and the receiver checking every signature the way
docs/webhooks.md tells integrators to.

The app's own background sender is stopped in these tests; a WebhookSender over the app's runtime
and a FakeClock POSTs, so retries and backoff need no sleeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import WEBHOOKS
from bot.webhooks.sender import WebhookSender, backoff, verdict
from bot.webhooks.signature import TOLERANCE, signature, verify
from bot.webhooks.subscriptions import WebhookTarget, webhook_targets
from core import commands as core
from core.order_no import order_no
from core.service import Done
from core.webhook_calls import DEAD, MAX_ATTEMPTS, PENDING, SENT, WebhookCall
from store.db import Database
from store.webhooks import SqlWebhookCalls
from tests.api.conftest import CONFIG, Api, make_api
from tests.fakes import FakeClock

CRM_SECRET = "crm-signing-key-7f3a9c2e41d8"
LEAVE_SECRET = "leave-signing-key-0b6d5e4f3a2c"
ORDER = {"workflow_id": 3, "transition_id": 351, "customer_name": "李先生", "category": "consult"}
ORDER |= {"priority": "normal", "description": "打不开"}

POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def apps_yaml(base: str) -> str:
    """demo (the API client of these tests, no webhook), crm (work orders: webhook), leave (granted
    only the leave workflow: webhook, but no work orders) and quiet (every workflow, no webhook)."""
    return f"""
apps:
  - name: demo
    token: demo-token
    workflows: all
    sn_prefix: loonflow
  - name: crm
    token: crm-api-token-1
    workflows: [3]
    webhook_url: {base}/crm?tenant=acme
    webhook_secret: "${{CRM_WEBHOOK_SECRET}}"
  - name: leave
    token: leave-api-token-1
    workflows: [1]
    webhook_url: {base}/leave
    webhook_secret: {LEAVE_SECRET}
  - name: quiet
    token: quiet-api-token-1
    workflows: all
"""


@dataclass
class Receiver:
    """Records every POST per path after checking its signature as docs/webhooks.md describes;
    answers from `answers[path]` (HTTP statuses, then 200)."""

    secrets: dict[str, str]
    answers: dict[str, list[int]] = field(default_factory=dict)
    got: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path.strip("/")
        raw = await request.read()  # the raw bytes, before any parsing
        stamp = request.headers["X-Ticketbot-Timestamp"]
        given = request.headers["X-Ticketbot-Signature"]
        # the documented scheme, written out by hand: sha256=hex(HMAC-SHA256(secret, ts + "." + body))
        mac = hmac.new(self.secrets[path].encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(given, f"sha256={mac}")
        assert abs(time.time() - int(stamp)) <= TOLERANCE
        assert verify(self.secrets[path], stamp, raw, given, time.time())
        body = json.loads(raw)
        assert request.headers["X-Ticketbot-Webhook-Id"] == body["id"]
        assert request.headers["X-Ticketbot-Event"] == "work_order_change"
        assert request.content_type == "application/json"
        assert request.query.get("tenant") == ("acme" if path == "crm" else None)
        self.got.setdefault(path, []).append(body)
        self.headers.append(dict(request.headers))
        queued = self.answers.get(path)
        return web.Response(status=queued.pop(0) if queued else 200, text="ok")


@dataclass
class World:
    api: Api
    receiver: Receiver
    sender: WebhookSender
    clock: FakeClock

    @property
    def db(self) -> Database:
        return self.api.runtime.db

    async def order(self) -> int:
        status, answer = await self.api.call("POST", "tickets", username="liuyang", json=ORDER)
        assert (status, answer["code"]) == (200, 0), answer
        return int(answer["data"]["ticket_id"])

    async def do(self, ticket_id: int, cmd: core.Command) -> None:
        assert isinstance(await self.api.runtime.service.execute(ticket_id, cmd), Done)

    async def drain(self, sender: WebhookSender | None = None) -> int:
        """Every due call POSTed (the fake clock catches up with the changes' real time first)."""
        self.clock.current = max(self.clock.current, datetime.now(UTC) + timedelta(seconds=1))
        return await (sender or self.sender).drain()

    async def later(self, **kw: float) -> int:
        self.clock.advance(**kw)
        return await self.sender.drain()

    async def calls(self, ticket_id: int) -> list[WebhookCall]:
        return await SqlWebhookCalls(self.db).for_ticket(ticket_id)


def new_sender(
    api: Api,
    clock: FakeClock,
    session: aiohttp.ClientSession,
    worker: str,
    targets: dict[str, WebhookTarget] | None = None,
) -> WebhookSender:
    runtime = api.runtime
    return WebhookSender(
        SqlWebhookCalls(runtime.db),
        runtime.directory,
        webhook_targets(runtime.config.apps) if targets is None else targets,
        clock,
        session=session,
        worker=worker,
        rnd=lambda: 0.5,
        epoch=time.time,  # the receiver checks the timestamp against its real clock
    )


@pytest.fixture
async def world(
    aiohttp_client: Any,
    aiohttp_server: Any,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[World]:
    receiver = Receiver({"crm": CRM_SECRET, "leave": LEAVE_SECRET})
    app = web.Application()
    app.router.add_post("/{name}", receiver.handle)
    server: TestServer = await aiohttp_server(app)
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (config / "apps.yaml").write_text(apps_yaml(str(server.make_url("")).rstrip("/")), encoding="utf-8")
    monkeypatch.setenv("CRM_WEBHOOK_SECRET", CRM_SECRET)  # apps.yaml reads it with ${...}
    api = await make_api(aiohttp_client, database_url, config)
    await api.client.app[WEBHOOKS].stop()  # these tests POST themselves, on a fake clock
    clock = FakeClock(datetime.now(UTC))
    session = aiohttp.ClientSession()
    yield World(api, receiver, new_sender(api, clock, session, "test-worker"), clock)
    await session.close()


# ------------------------------------------------------------------------------------ statuses


async def test_every_status_reaches_the_subscriber_once_signed(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    w = world
    ticket_id = await w.order()
    await w.do(ticket_id, core.Accept("xuli"))
    step = {"pic": ["https://img.example.com/1.png"], "is_show": 1}
    await w.do(ticket_id, core.Handle("xuli", 352, suggestion="已远程解决", extra=step))
    status, answer = await w.api.call(
        "POST", f"tickets/{ticket_id}/comments", username="xuli", json={"suggestion": "已回访"}
    )
    assert (status, answer["code"]) == (200, 0)
    await w.do(ticket_id, core.Handle("liuyang", 356, {"satisfaction": "satisfied"}, "谢谢"))
    await w.do(ticket_id, core.Reopen("liuyang", "又坏了"))
    with caplog.at_level(logging.INFO, logger="ticketbot.webhooks"):
        assert await w.drain() == 5
    got = w.receiver.got["crm"]
    assert [b["status"] for b in got] == ["create", "switch", "reply", "close", "reopen"]
    number = order_no(ticket_id)
    assert got[0] == {
        "id": got[0]["id"],
        "corp_id": "",
        "create_time": got[0]["create_time"],
        "type": "event",
        "event": "work_order_change",
        "status": "create",
        "retry_count": 0,
        "msg_data": {"order_no": number, "staff_id": "LiuYang"},  # the WeCom userid of liuyang
    }
    assert abs(got[0]["create_time"] - time.time()) < 60
    assert got[1]["msg_data"] == {
        "order_no": number,
        "staff_id": "XuLi",
        "staff_ext_id": "xuli",
        "handler_id": "LiuYang",
        "cc_list": ["WuJuan"],
        "content": {"text": "已远程解决", "pic": ["https://img.example.com/1.png"]},
        "is_show": 1,
        "attached_json": [],
    }
    assert got[2]["msg_data"]["content"] == {"text": "已回访", "pic": []}
    assert (got[3]["msg_data"]["staff_id"], got[3]["msg_data"]["content"]["text"]) == ("LiuYang", "谢谢")
    assert got[4]["msg_data"]["content"]["text"] == "又坏了"
    assert len({b["id"] for b in got}) == 5 and all(b["retry_count"] == 0 for b in got)
    assert set(w.receiver.got) == {"crm"}  # leave: not granted the work orders; quiet, demo: no webhook
    calls = await w.calls(ticket_id)
    assert {(c.app, c.state, c.response_status) for c in calls} == {("crm", SENT, 200)}
    assert {c.id for c in calls} == {b["id"] for b in got}
    assert await w.later(hours=2) == 0  # sent exactly once
    text = caplog.text + repr([r.__dict__ for r in caplog.records])
    assert CRM_SECRET not in text and "tenant=acme" not in text


async def test_leave_requests_are_no_work_orders(world: World) -> None:
    fields = {"workflow_id": 1, "transition_id": 151, "start_date": "2026-12-01", "end_date": "2026-12-02"}
    status, answer = await world.api.call(
        "POST", "tickets", username="liuyang", json={**fields, "days": 2, "reason": "家里有事"}
    )
    assert (status, answer["code"]) == (200, 0), answer
    assert await world.drain() == 0
    assert world.receiver.got == {}


# ------------------------------------------------------------------------------------ failures


async def test_a_5xx_is_retried_with_the_retry_count_in_the_body(world: World) -> None:
    w = world
    w.receiver.answers["crm"] = [503, 502]
    ticket_id = await w.order()
    assert await w.drain() == 1
    [call] = await w.calls(ticket_id)
    delay = backoff(1, 0.5)
    assert (call.state, call.retry_count, call.response_status, call.last_error) == (
        PENDING,
        1,
        503,
        "HTTP 503",
    )
    assert call.next_attempt_at == w.clock.now() + timedelta(seconds=delay)
    assert await w.later(seconds=delay - 0.5) == 0  # not due yet
    assert await w.later(seconds=0.5) == 1
    assert await w.later(seconds=backoff(2, 0.5)) == 1
    [call] = await w.calls(ticket_id)
    assert (call.state, call.retry_count, call.response_status) == (SENT, 2, 200)
    bodies = w.receiver.got["crm"]
    assert [b["retry_count"] for b in bodies] == [0, 1, 2]
    assert len({b["id"] for b in bodies}) == 1  # the same message each time
    assert {json.dumps(b["msg_data"]) for b in bodies} == {json.dumps(bodies[0]["msg_data"])}


async def test_a_later_change_waits_for_the_earlier_one(world: World) -> None:
    w = world
    w.receiver.answers["crm"] = [500]
    ticket_id = await w.order()
    await w.do(ticket_id, core.Comment("liuyang", "补充"))
    assert await w.drain() == 1  # the create failed; the reply waits for it
    assert [b["status"] for b in w.receiver.got["crm"]] == ["create"]
    assert await w.later(seconds=backoff(1, 0.5)) == 2
    assert [(b["status"], b["retry_count"]) for b in w.receiver.got["crm"]] == [
        ("create", 0),
        ("create", 1),
        ("reply", 0),
    ]


@pytest.mark.parametrize("refusal", [400, 401, 404, 410, 422])
async def test_a_4xx_is_dead_at_once(world: World, refusal: int, caplog: pytest.LogCaptureFixture) -> None:
    w = world
    w.receiver.answers["crm"] = [refusal]
    ticket_id = await w.order()
    with caplog.at_level(logging.INFO, logger="ticketbot.webhooks"):
        assert await w.drain() == 1
    [call] = await w.calls(ticket_id)
    assert (call.state, call.retry_count, call.response_status) == (DEAD, 1, refusal)
    assert call.last_error == f"the receiver refused it: HTTP {refusal}"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].__dict__["http_status"] == refusal
    assert errors[0].__dict__["ticket_id"] == ticket_id
    assert await w.later(days=1) == 0


@pytest.mark.parametrize("status", [408, 429, 500, 503, 301])
def test_which_answers_are_retried(status: int) -> None:
    assert verdict(status) == "retry"
    assert verdict(200) == verdict(204) == "sent"
    assert verdict(403) == "dead"


def test_backoff_is_full_jitter_with_a_floor_and_a_ceiling() -> None:
    assert backoff(1, 0.0) == 1.0  # never 0: a failing receiver is not hammered
    assert backoff(1, 0.999) == pytest.approx(4.995)
    assert backoff(3, 0.5) == 10.0
    assert backoff(30, 0.999) == pytest.approx(3596.4)


async def test_dead_after_max_attempts_logged_once(world: World, caplog: pytest.LogCaptureFixture) -> None:
    w = world
    w.receiver.answers["crm"] = [500] * (MAX_ATTEMPTS + 5)
    ticket_id = await w.order()
    with caplog.at_level(logging.INFO, logger="ticketbot.webhooks"):
        await w.drain()
        for _ in range(MAX_ATTEMPTS + 2):
            await w.later(hours=2)
    [call] = await w.calls(ticket_id)
    assert (call.state, call.retry_count, call.response_status) == (DEAD, MAX_ATTEMPTS, 500)
    assert [b["retry_count"] for b in w.receiver.got["crm"]] == list(range(MAX_ATTEMPTS))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].getMessage() == "webhook call dead"
    assert CRM_SECRET not in caplog.text


async def test_a_transport_error_is_retried(world: World) -> None:
    w = world
    ticket_id = await w.order()
    async with aiohttp.ClientSession() as session:
        refused = {"crm": WebhookTarget("http://127.0.0.1:9/x?k=s", CRM_SECRET)}  # nothing listens there
        assert await w.drain(new_sender(w.api, w.clock, session, "w-refused", refused)) == 1
    [call] = await w.calls(ticket_id)
    assert (call.state, call.retry_count, call.response_status) == (PENDING, 1, None)
    assert call.last_error and "k=s" not in call.last_error
    assert await w.later(seconds=backoff(1, 0.5)) == 1  # the real receiver takes it
    [call] = await w.calls(ticket_id)
    assert (call.state, call.retry_count) == (SENT, 1)


async def test_an_app_that_lost_its_webhook_gets_its_calls_dead(world: World) -> None:
    w = world
    ticket_id = await w.order()
    async with aiohttp.ClientSession() as session:  # as after removing crm's webhook from apps.yaml
        assert await w.drain(new_sender(w.api, w.clock, session, "w-orphan", {})) == 1
    [call] = await w.calls(ticket_id)
    assert (call.state, call.retry_count) == (DEAD, 0)
    assert "no webhook_url" in call.last_error
    assert w.receiver.got == {}


# ------------------------------------------------------------------------------------ workers


@POSTGRES_ONLY
async def test_two_senders_post_each_call_once(world: World, database_url: str) -> None:
    w = world
    for _ in range(12):
        await w.order()
    other_db = Database(database_url)
    session = aiohttp.ClientSession()
    try:
        a = w.sender
        b = new_sender(w.api, w.clock, session, "second-worker")
        b.calls = SqlWebhookCalls(other_db)  # another process: its own connections
        w.clock.current = datetime.now(UTC) + timedelta(seconds=1)
        handled = await asyncio.gather(a.run_once(), b.run_once(), a.drain(), b.drain())
    finally:
        await session.close()
        await other_db.dispose()
    assert sum(handled) == 12
    ids = [body["id"] for body in w.receiver.got["crm"]]
    assert len(ids) == len(set(ids)) == 12
    calls = await SqlWebhookCalls(w.db).list_calls(limit=100)
    assert {c.state for c in calls} == {SENT} and len(calls) == 12


# ------------------------------------------------------------------------------------ signature


def test_the_documented_example_verifies() -> None:
    """The worked example of docs/webhooks.md."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    secret, stamp = "whsec-3f9a7c21d4e8b6a0", "1795338000"
    body = (
        b'{"id":"6f1c2a9e-8b7d-4c3e-9a51-2d7e0b4f8c13","corp_id":"ww1234567890abcdef","create_time":1795338000,'
        b'"type":"event","event":"work_order_change","status":"create","retry_count":0,'
        b'"msg_data":{"order_no":"1470000000000000042","staff_id":"LiuYang"}}'
    )
    expected = signature(secret, stamp, body)
    assert (
        expected
        == "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    assert expected in doc and body.decode() in doc and secret in doc
    assert verify(secret, stamp, body, expected, now=1795338000 + 299)
    assert not verify(secret, stamp, body, expected, now=1795338000 + 301)  # too old: a replay
    assert not verify(secret, stamp, body + b" ", expected, now=1795338000)
    assert not verify("another-secret-0000", stamp, body, expected, now=1795338000)
    assert not verify(secret, "17953380OO", body, expected, now=1795338000)
    assert not verify(secret, stamp, body, "sha256=" + "0" * 64, now=1795338000)
