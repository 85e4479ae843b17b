"""The permission matrix over HTTP: every (action, role) cell of the loonflow v1.0 API and of the
work-order open API, asserted against the hand-written table (tests/matrix/expected.py), on SQLite
and PostgreSQL, through the real composed app (one app per backend; the two dialects serve the very
same tickets of workflow 7).

- allowed: a fresh scenario ticket of the kind the action needs; the request as that role succeeds
  (loonflow `code` 0, work order `errcode` 0) and the change is in the store (state, handlers,
  fields, flow log entry by that person, ...);
- refused: on the shared scenario tickets (a refusal changes nothing, so nothing is rebuilt): the
  dialect's refusal (loonflow, with strict statuses on: 403 and `code` -1 with a message; work
  order: 403 `48002` for someone who sees the order, 404 `22301` for someone who does not; a list
  simply leaves the ticket out) and the ticket, its flow log and the store's counts are exactly as
  before.

Besides the table's actions, the per-ticket reads (flow log, steps, participants, deliveries, the
open API's share link) and both lists are cells of the `view` row: a read route that forgot the
view check would leak the ticket to the leader or the stranger.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from core.order_no import order_no
from core.ticket import Ticket
from tests.fakes import RecordingSender
from tests.matrix import expected
from tests.matrix.changes import check_change
from tests.matrix.probe import Probe
from tests.matrix.scenario import (
    APP,
    APP_TOKEN,
    B_APPROVE,
    B_REJECT,
    HANDLER_NOW,
    HELPER,
    STATE_A,
    Scenario,
    matrix_runtime,
)
from tests.matrix.tally import backend_of, tally

pytestmark = pytest.mark.asyncio(loop_scope="module")

SURFACES = ("loonflow", "workorder")
CELLS = [(s, action, role, ok) for s in SURFACES for action, role, ok in expected.cells(s)]
IDS = [f"{s}-{action}-{role}" for s, action, role, _ in CELLS]


def signed(role: str) -> dict[str, str]:
    """loonflow's signature headers for the matrix app, acting as `role` (the work-order open API
    takes the same)."""
    ts = str(int(time.time()))
    digest = hashlib.md5((ts + APP_TOKEN).encode()).hexdigest()  # noqa: S324 - loonflow's scheme
    return {"appname": APP, "timestamp": ts, "signature": digest, "username": role}


@dataclass
class Http:
    client: TestClient[web.Request, web.Application]
    probe: Probe
    scenario: Scenario
    shared: dict[str, Ticket]  # scenario kind -> the ticket refusals are tried on
    backend: str

    async def call(self, method: str, path: str, role: str, body: Any = None) -> tuple[int, Any]:
        headers = signed(role)
        params = None
        if method == "GET" and isinstance(body, dict):
            params, body = body, None
        resp = await self.client.request(method, path, json=body, params=params, headers=headers)
        return resp.status, await resp.json(content_type=None)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http(database_url: str) -> AsyncIterator[Http]:
    env = {"TICKETBOT_API_STRICT_STATUS": "1", "TICKETBOT_DUE_WORK_SECONDS": "0"}
    runtime = await matrix_runtime(database_url, env)
    # a chat platform for urges to reach handler_now (who has a WeCom userid)
    app = await create_app(runtime.settings, runtime, senders={"wecom": RecordingSender()})
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    try:
        scenario = Scenario(runtime.service)
        shared = {kind: await scenario.build(kind) for kind in ("at_b", "ended", "accept")}
        yield Http(client, Probe(runtime.db), scenario, shared, backend_of(database_url))
    finally:
        await client.close()


# ------------------------------------------------------------------------------------ requests


def loonflow_request(action: str, ticket: Ticket, role: str) -> tuple[str, str, Any]:
    base = f"/api/v1.0/tickets/{ticket.id}"
    requests: dict[str, tuple[str, str, Any]] = {
        "view": ("GET", base, None),
        "flowlogs": ("GET", f"{base}/flowlogs", None),
        "flowsteps": ("GET", f"{base}/flowsteps", None),
        "participant_info": ("GET", f"{base}/participant_info", None),
        "deliveries": ("GET", f"{base}/deliveries", None),
        "list": ("GET", "/api/v1.0/tickets", {"category": "all", "sn": ticket.sn}),
        "approve": ("PATCH", base, {"transition_id": B_APPROVE, "suggestion": f"同意 ({role})"}),
        "reject": ("PATCH", base, {"transition_id": B_REJECT, "suggestion": f"驳回 ({role})"}),
        "accept": ("POST", f"{base}/accept", {}),
        "deliver": ("POST", f"{base}/deliver", {"target_username": HELPER, "suggestion": "请协助"}),
        "force_deliver": ("POST", f"{base}/deliver", {"target_username": HELPER, "from_admin": True}),
        "add_node": ("POST", f"{base}/add_node", {"target_username": HELPER, "suggestion": "请看看"}),
        "retreat": ("POST", f"{base}/retreat", {"suggestion": "撤回"}),
        "close": ("POST", f"{base}/close", {"suggestion": "关闭"}),
        "force_state": ("PUT", f"{base}/state", {"state_id": STATE_A, "suggestion": "退回初审"}),
        "comment": ("POST", f"{base}/comments", {"suggestion": f"comment by {role}"}),
        "update_fields": ("PATCH", f"{base}/fields", {"note": f"edited by {role}"}),
        "delete": ("DELETE", base, {"suggestion": "删除"}),
        "urge": ("POST", f"{base}/urge", {"suggestion": "请尽快"}),
    }
    return requests[action]


def workorder_request(action: str, ticket: Ticket, role: str) -> tuple[str, str, Any]:
    number = order_no(ticket.id)
    base = "/open-api/workorder"
    requests: dict[str, tuple[str, str, Any]] = {
        "view": ("GET", f"{base}/detail", {"order_no": number}),
        "list": ("GET", f"{base}/list", {"title": ticket.title, "limit": "100"}),
        "share": ("POST", f"{base}/share", {"order_no": number}),
        "approve": ("POST", f"{base}/switch", {"order_no": number, "transition_id": B_APPROVE}),
        "reject": ("POST", f"{base}/switch", {"order_no": number, "transition_id": B_REJECT}),
        "accept": ("POST", f"{base}/accept", {"order_no": number}),
        "deliver": ("POST", f"{base}/switch", {"order_no": number, "handler_id": HELPER}),
        "comment": ("POST", f"{base}/reply", {"order_no": number, "content": f"reply by {role}"}),
        "close": ("POST", f"{base}/close", {"order_no": number, "content": "关闭"}),
        "reopen": ("POST", f"{base}/reopen", {"order_no": number, "content": "重新打开"}),
        "evaluate": ("POST", f"{base}/evaluate", {"order_no": number, "point": 4, "content": "还行"}),
        "add_cc": ("POST", f"{base}/cc", {"order_no": number, "cc_list": [HELPER]}),
    }
    return requests[action]


REQUESTS = {"loonflow": loonflow_request, "workorder": workorder_request}

# ------------------------------------------------------------------------------------- checks


def assert_success(surface: str, status: int, body: Any) -> None:
    if surface == "loonflow":
        assert (status, body["code"]) == (200, 0), body
    else:
        assert (status, body["errcode"], body["errmsg"]) == (200, 0, "ok"), body


def assert_refusal(surface: str, role: str, status: int, body: Any) -> None:
    """The dialect's refusal, with a message; someone who may not see the ticket learns nothing else."""
    sees = role in expected.VIEWERS
    if surface == "loonflow":
        assert set(body) == {"code", "msg", "data"}, body
        assert (status, body["code"]) == (403, -1), body
        message = body["msg"]
        if not sees:
            assert "no permission to view" in message, body
    else:
        assert set(body) == {"errcode", "errmsg"}, body
        assert (status, body["errcode"]) == ((403, 48002) if sees else (404, 22301)), body
        message = body["errmsg"]
    assert isinstance(message, str) and len(message) > 10 and "Traceback" not in message, body


# -------------------------------------------------------------------------------------- the cells


def listed(surface: str, answer: Any) -> list[int]:
    """The ticket ids of a list answer."""
    rows = answer["data"]["value"] if surface == "loonflow" else answer["workorder_list"]
    return [int(row["id"]) for row in rows]


def check_read(surface: str, action: str, role: str, ticket: Ticket, answer: Any) -> None:
    """What a read that was allowed answered about the ticket."""
    if action == "view":
        shown = answer["data"]["value"]["id"] if surface == "loonflow" else answer["work_order"]["id"]
        assert shown == ticket.id, answer
    elif action == "list":
        assert listed(surface, answer) == [ticket.id], answer
    elif action == "share":
        assert f"/tickets/{ticket.id}?u={role}&" in answer["url"], answer
    elif action in ("flowlogs", "flowsteps"):
        assert answer["data"]["value"], answer
    elif action in ("participant_info", "deliveries"):
        assert answer["data"], answer


@pytest.mark.parametrize(("surface", "action", "role", "ok"), CELLS, ids=IDS)
async def test_cell(http: Http, surface: str, action: str, role: str, ok: bool) -> None:
    table_action = expected.table_action(surface, action)
    kind = expected.ticket_of(table_action)
    # an allowed change acts on a ticket of its own; reads (which change nothing) on the shared one
    ticket = await http.scenario.build(kind) if ok and table_action != "view" else http.shared[kind]
    before = await http.probe.seen(ticket.id)
    method, path, body = REQUESTS[surface](action, ticket, role)
    status, answer = await http.call(method, path, role, body)
    after = await http.probe.seen(ticket.id)
    if ok:
        assert_success(surface, status, answer)
        check_read(surface, action, role, ticket, answer)
        if action == "urge":
            assert answer["data"] == {"urged": [HANDLER_NOW]}, answer
            assert after.counts[3] == before.counts[3] + 1, "the urge card was planned"
        # the open API's hand-over is forced for an admin / intervener: the same change either way
        check_change(table_action, role, before.ticket, after.ticket, after.logs[len(before.logs) :])
    else:
        if action == "list":  # a list shows only what one may see: the ticket is not in it
            assert_success(surface, status, answer)
            assert ticket.id not in listed(surface, answer), answer
        else:
            assert_refusal(surface, role, status, answer)
        assert after == before, "a refused request changed something"
    tally(__name__, http.backend, surface, ok)


# ------------------------------------------------------------------------- the buttons shown


BUTTONS = [(dialect, role) for dialect in ("loonflow", "workorder") for role in expected.ROLES]


def may(action: str, role: str) -> bool:
    return role in expected.ALLOWED_ROLES[action]


@pytest.mark.parametrize(("dialect", "role"), BUTTONS, ids=[f"{d}-buttons-{r}" for d, r in BUTTONS])
async def test_buttons_shown(http: Http, dialect: str, role: str) -> None:
    """What each dialect shows a role it may do (loonflow's /transitions, the open API's
    button_operate) is what the table allows: a button shown is a request accepted, and the other
    way round. Someone who may not see the ticket is refused the read itself."""
    sees = role in expected.VIEWERS
    if dialect == "loonflow":
        await loonflow_transitions(http, role, sees)
    else:
        await workorder_buttons(http, role, sees)
    tally(__name__, http.backend, f"{dialect} buttons", sees)


async def loonflow_transitions(http: Http, role: str, sees: bool) -> None:
    wanted: list[tuple[Ticket, list[int | str]]] = [
        (http.shared["at_b"], [B_APPROVE, B_REJECT] if may("approve", role) else []),
        (http.shared["accept"], ["接单"] if may("accept", role) else []),
    ]
    for ticket, want in wanted:
        status, body = await http.call("GET", f"/api/v1.0/tickets/{ticket.id}/transitions", role)
        if not sees:
            assert_refusal("loonflow", role, status, body)
            continue
        assert_success("loonflow", status, body)
        shown = [b["transition_id"] or b["transition_name"] for b in body["data"]["value"]]
        assert shown == want, body


async def workorder_buttons(http: Http, role: str, sees: bool) -> None:
    switch = ("approve", "reject", "deliver", "force_deliver")
    wanted: list[tuple[Ticket, dict[str, bool]]] = [
        (
            http.shared["at_b"],
            {
                "comment": may("comment", role),
                "deliver": any(may(a, role) for a in switch),
                "close": may("close", role),
                "update": may("update_fields", role),
                "reopen": False,
                "evaluate": False,
            },
        ),
        (
            http.shared["ended"],
            {
                "close": False,
                "deliver": False,
                "reopen": may("reopen", role),
                "evaluate": may("evaluate", role),
            },
        ),
    ]
    for ticket, want in wanted:
        query = {"order_no": order_no(ticket.id)}
        status, body = await http.call("GET", "/open-api/workorder/detail", role, query)
        if not sees:
            assert_refusal("workorder", role, status, body)
            continue
        assert_success("workorder", status, body)
        buttons = body["work_order"]["button_operate"]
        assert {k: buttons[k] for k in want} == want, buttons
