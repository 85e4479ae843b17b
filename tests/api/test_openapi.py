"""The OpenAPI document of the loonflow dialect: valid, complete both ways, and true of the real app.

- The document validates as OpenAPI 3.0 (openapi-spec-validator, and schemathesis's own loader).
- Every method + path the /api/v1.0 sub-application registers is documented, and every documented
  operation is registered (the router is walked, so a new route without documentation fails).
- GET /api/openapi.json serves it without authentication.
- A property-based run (tests/api/openapi_run.py, shared with test_workorder_openapi.py:
  schemathesis 3 + hypothesis) against the real app: for every documented operation, requests
  generated from the document (bounded, derandomized) are sent with valid loonflow signature
  headers, as `admin` and as normal users, to the app served by aiohttp's TestServer on a local
  port. Every answer must: not be a 5xx (nor the envelope's "internal error", which non-strict
  mode answers with HTTP 200), carry no traceback, have a documented status and content type,
  and validate against the operation's documented response schema; and every refusal (not 2xx,
  or the envelope's code not 0) must leave the database unchanged (row counts and a digest of
  every table's rows, tests/db_snapshot.py; tests/test_db_snapshot.py shows that check failing
  on a change).
  Runs: "documented" (the document as served) and "focused" (see below; every operation answers
  code 0 at least once), 25 generated cases per operation each, on SQLite; the focused one again
  on PostgreSQL (10 per operation) and with strict statuses on (SQLite, 10 per operation). The
  case counts are printed in the terminal summary ("openapi property run").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestClient

from api.openapi import OPENAPI_PATH, PREFIX, add_openapi_route, openapi_document
from bot.app import create_app
from config.settings import load_settings
from core.workflow import CustomField, FieldAccess, FieldType, Workflow
from tests.api.conftest import CONFIG, Api, HookTarget, config_with_hook, loonflow_headers, make_api
from tests.api.openapi_run import (
    AUTH_HEADERS,
    RUNS,
    SQLITE_ONLY,
    Dialect,
    Explicit,
    Ok,
    Report,
    Schema,
    SeededPlan,
    Target,
    assert_documented_exactly,
    conclude,
    documented_operations,
    explicit_case,
    operations_of,
    property_run,
    schemathesis,
    validate_spec,
)

STRICT_EXAMPLES = 10  # per operation in the strict-status run
WIDE_USERS = ("admin", "liuyang")  # the super admin and a normal user
# the focused run adds the people the seeded tickets wait for: liuyang's approver, an HR clerk (104),
# ops on duty (204) and the customer-service leader (302)
FOCUS_USERS = ("admin", "liuyang", "wangqiang", "yangfan", "sunhao", "wujuan")


# --- the document ----------------------------------------------------------------------------------


def test_document_is_valid_openapi() -> None:
    doc = openapi_document()
    assert doc["openapi"].startswith("3.0")
    validate_spec(doc)  # openapi-spec-validator: raises on any violation of the OpenAPI 3.0 schema
    schema = schemathesis.from_dict(doc, base_url="http://127.0.0.1:9", validate_schema=True)
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results)  # every operation parses
    assert len(results) == len(documented_operations(doc, prefix=""))
    assert "200" in doc["info"]["description"] and "409" in doc["info"]["description"]


def test_every_operation_answers_the_envelope() -> None:
    doc = openapi_document()
    for path, method, op in operations_of(doc, PREFIX):  # the open API's: test_workorder_openapi.py
        where = f"{method.upper()} {path}"
        assert op["operationId"] and op["summary"], where
        responses = op["responses"]
        extra = {"429"} if path.endswith("/urge") else set()  # urges are throttled
        assert set(responses) == {"200", "400", "401", "403", "404", "409", "413"} | extra, where
        success, failure = responses["200"]["content"]["application/json"]["schema"]["oneOf"]
        assert success["properties"]["code"] == {"type": "integer", "enum": [0]}, where
        assert failure == {"$ref": "#/components/schemas/Failure"}, where
        for path_param in (p for p in op.get("parameters", []) if p["in"] == "path"):
            assert "{" + path_param["name"] + "}" in path, where
    failure_schema = doc["components"]["schemas"]["Failure"]
    assert failure_schema["properties"]["code"]["enum"] == [-1]
    assert failure_schema["properties"]["data"]["maxProperties"] == 0
    assert doc["components"]["schemas"]["Envelope"]["properties"]["code"]["enum"] == [0, -1]
    schemes = doc["components"]["securitySchemes"]
    assert {s["name"] for s in schemes.values()} == AUTH_HEADERS
    assert all(s["type"] == "apiKey" and s["in"] == "header" for s in schemes.values())


def test_ticket_list_documents_every_parameter_of_the_seed() -> None:
    op = openapi_document()["paths"][f"{PREFIX}/tickets"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert set(params) == {
        "sn",
        "title",
        "create_start",
        "create_end",
        "workflow_ids",
        "state_ids",
        "ticket_ids",
        "reverse",
        "page",
        "per_page",
        "act_state_id",
        "parent_ticket_id",
        "parent_ticket_state_id",
        "category",
    }
    assert params["category"]["required"] is True
    assert params["category"]["schema"]["enum"] == ["all", "owner", "duty", "relation", "worked"]
    assert [n for n, p in params.items() if p["required"]] == ["category"]
    create = openapi_document()["paths"][f"{PREFIX}/tickets"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert {
        "workflow_id",
        "transition_id",
        "parent_ticket_id",
        "parent_ticket_state_id",
        "suggestion",
    } <= set(body["properties"])
    assert body["required"] == ["workflow_id", "transition_id"]
    assert body["additionalProperties"]  # custom field values


@SQLITE_ONLY
async def test_document_lists_exactly_the_registered_routes(api: Api) -> None:
    app = api.client.app
    assert app is not None
    assert_documented_exactly(app, PREFIX)


@SQLITE_ONLY
async def test_openapi_json_is_served_without_auth(aiohttp_client: Any, database_url: str) -> None:
    settings_ = load_settings(env={}, database_url=database_url, config_dir=CONFIG)
    app = await create_app(settings_)
    if not any(r.canonical == OPENAPI_PATH for r in app.router.resources()):
        add_openapi_route(app)  # until bot/app.py registers it
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    resp = await client.get(OPENAPI_PATH)
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.json() == openapi_document()


# --- the property-based run against the real app -----------------------------------------------------
#
# "documented": requests generated from the document as served (any id, any value the document
# allows), against a few tickets seeded once. "focused": the same document with the
# request side narrowed to the seeded world (path ids among fresh tickets, the configured workflow,
# state, transition ids and users; create/handle bodies with the workflows' real custom fields and
# value types), so that the success answers of every route are generated and validated too. The
# response side, the object of the test, is never changed. Before each operation of a focused run
# fresh tickets are created, so that earlier operations (delete, close...) don't starve later ones.


@dataclass(frozen=True)
class World:
    """What the shipped config holds: the focused run draws its ids and values from it."""

    workflows: tuple[Workflow, ...]
    users: tuple[str, ...] = FOCUS_USERS

    @property
    def state_ids(self) -> list[int]:
        return sorted(s.id for wf in self.workflows for s in wf.states)

    @property
    def transition_ids(self) -> list[int]:
        return sorted(t.id for wf in self.workflows for t in wf.transitions)


class Seeder:
    """Creates fresh tickets over HTTP (blocking; from the run's thread)."""

    def __init__(
        self, session: requests.Session, base_url: str, settle: Callable[[], None] = lambda: None
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.settle = settle  # every due background pass made (blocking)

    def call(self, method: str, path: str, username: str, body: dict[str, Any]) -> Any:
        url = f"{self.base_url}{PREFIX}/{path}"
        resp = self.session.request(method, url, json=body, headers=loonflow_headers(username), timeout=60)
        answer = resp.json()
        assert resp.status_code == 200 and answer["code"] == 0, (method, path, body, answer)
        return answer["data"]

    def create(self, body: dict[str, Any]) -> int:
        ticket_id = self.call("POST", "tickets", "liuyang", body)["ticket_id"]
        assert isinstance(ticket_id, int)
        return ticket_id

    def seed(self) -> list[int]:
        """Five tickets of liuyang's: leave at 102 (wangqiang's), leave at 104 (HR, accept first),
        IT access at 202 (wangqiang's), IT access waiting for its hook (205), a customer-service
        work order at 302 (accept first)."""
        leave = {
            "workflow_id": 1,
            "transition_id": 151,
            "leave_type": "annual",
            "start_date": "2024-05-01",
            "end_date": "2024-05-02",
            "days": 2,
            "reason": "family",
        }
        access = {
            "workflow_id": 2,
            "transition_id": 251,
            "system": "gitlab",
            "access_level": "read",
            "reason": "ci",
        }
        work_order = {
            "workflow_id": 3,
            "transition_id": 351,
            "customer_name": "ACME",
            "category": "consult",
            "priority": "normal",
            "description": "cannot log in",
        }
        ids = [self.create(leave), self.create(leave), self.create(access), self.create(access)]
        ids += [self.create(work_order), self.create(leave)]
        self.call("PATCH", f"tickets/{ids[1]}", "wangqiang", {"transition_id": 152})
        self.call("PUT", f"tickets/{ids[3]}/state", "admin", {"state_id": 205, "suggestion": "to the hook"})
        self.settle()  # the hook was called: its callback is accepted
        self.call("POST", f"tickets/{ids[5]}/add_node", "wangqiang", {"target_username": "yangfan"})
        return ids


# operationId -> explicit cases of the focused run that should succeed on freshly seeded tickets:
# (acting user, index of the seeded ticket (Seeder.seed) or None, query, JSON body or None)
KNOWN_GOOD: dict[str, list[tuple[str, int | None, dict[str, Any] | None, dict[str, Any] | None]]] = {
    "listTickets": [("liuyang", None, {"category": "owner", "per_page": "3"}, None)],
    "createTicket": [
        (
            "liuyang",
            None,
            None,
            {
                "workflow_id": 2,
                "transition_id": 251,
                "system": "vpn",
                "access_level": "write",
                "reason": "home",
            },
        )
    ],
    "ticketStates": [("liuyang", None, None, None)],  # query filled in with the seeded ids
    "getTicket": [("liuyang", 0, None, None), ("wangqiang", 0, None, None)],
    "handleTicket": [("wangqiang", 0, None, {"transition_id": 152, "suggestion": "ok"})],
    "deleteTicket": [("admin", 2, None, {"suggestion": "duplicate"})],
    "ticketTransitions": [("wangqiang", 0, None, None), ("yangfan", 1, None, None)],
    "ticketFlowLogs": [("liuyang", 1, {"ticket_data": "1", "desc": "0"}, None)],
    "ticketFlowSteps": [("liuyang", 1, None, None)],
    "ticketParticipants": [("liuyang", 0, None, None)],
    "changeTicketState": [("admin", 0, None, {"state_id": 101, "suggestion": "back"})],
    "updateTicketFields": [("admin", 0, None, {"reason": "changed"})],
    "acceptTicket": [("yangfan", 1, None, None)],
    "deliverTicket": [("wangqiang", 0, None, {"target_username": "sunhao", "suggestion": "yours"})],
    "addNode": [("wangqiang", 0, None, {"target_username": "yangfan"})],
    "addNodeEnd": [("yangfan", 5, None, {"suggestion": "fine by me"})],
    "retryScript": [("admin", 3, None, None)],
    "commentTicket": [("liuyang", 0, None, {"suggestion": "please hurry"})],
    "hookCallBack": [("admin", 3, None, {"result": True, "msg": "granted"})],
    "closeTicket": [("admin", 0, None, {"suggestion": "not needed"})],
    "retreatTicket": [("liuyang", 0, None, {"suggestion": "withdrawn"})],
    "listWorkflows": [("liuyang", None, None, None)],
    "getWorkflow": [("liuyang", None, None, None)],
    "workflowInitState": [("liuyang", None, None, None)],
    "workflowStates": [("liuyang", None, None, None)],
    "workflowTransitions": [("liuyang", None, None, None)],
    "workflowCustomFields": [("liuyang", None, None, None)],
    "getState": [("liuyang", None, None, None)],
}


def known_good_cases(operation: Any, ticket_ids: list[int]) -> Explicit:
    """The KNOWN_GOOD cases of `operation` as schemathesis cases on the seeded `ticket_ids`."""
    out = []
    op_id = operation.definition.raw["operationId"]
    for username, index, query, body in KNOWN_GOOD.get(op_id, []):
        path_parameters: dict[str, Any] = {}
        if index is not None:
            path_parameters["ticket_id"] = ticket_ids[index]
        if "{workflow_id}" in operation.path:
            path_parameters["workflow_id"] = 1
        if "{state_id}" in operation.path:
            path_parameters["state_id"] = 102
        if op_id == "ticketStates":
            query = {"ticket_ids": ",".join(map(str, ticket_ids))}
        case = explicit_case(operation, path_parameters=path_parameters, query=query, body=body)
        out.append((case, username))
    return out


def _field_schema(f: CustomField, users: list[str]) -> Schema:
    kind = FieldType(f.type)
    choices = sorted(f.choices)
    if kind in (FieldType.INT,):
        return {"type": "integer", "minimum": -5, "maximum": 40}
    if kind == FieldType.FLOAT:
        return {"type": "number"}
    if kind == FieldType.BOOL:
        return {"type": "boolean"}
    if kind == FieldType.DATE:
        return {"type": "string", "format": "date"}
    if kind == FieldType.DATETIME:
        return {
            "type": "string",
            "pattern": r"^20[0-9]{2}-(0[1-9]|1[0-2])-[0-2][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]$",
        }
    if kind in (FieldType.RADIO, FieldType.SELECT):
        return {"type": "string", "enum": choices}
    if kind in (FieldType.CHECKBOX, FieldType.MULTI_SELECT):
        return {"type": "array", "items": {"type": "string", "enum": choices}, "uniqueItems": True}
    if kind == FieldType.USER:
        return {"type": "string", "enum": users}
    if kind == FieldType.MULTI_USER:
        return {"type": "array", "items": {"type": "string", "enum": users}, "uniqueItems": True}
    if kind == FieldType.ATTACHMENT:
        return {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 40}, "maxItems": 3}
    return {"type": "string", "maxLength": 60}  # string, textarea, rich text


def _json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def focus(doc: dict[str, Any], world: World, ticket_ids: list[int]) -> dict[str, Any]:
    """`doc` with its request side narrowed to `world` and the fresh `ticket_ids` (see above)."""
    users = [*world.users, "nobody"]
    states = world.state_ids
    tickets = [*ticket_ids, max(ticket_ids) + 1000]  # and one that does not exist
    workflows = [wf.id for wf in world.workflows]
    all_fields: dict[str, Schema] = {}
    for wf in world.workflows:
        for f in wf.fields:
            all_fields.setdefault(f.key, _field_schema(f, users))
    path_ids: dict[str, Schema] = {
        "ticket_id": {"type": "integer", "enum": tickets},
        "workflow_id": {"type": "integer", "enum": [*workflows, 999]},
        "state_id": {"type": "integer", "enum": [*states, 9999]},
    }
    query_ids: dict[str, Schema] = {
        "workflow_ids": {"type": "array", "items": {"type": "integer", "enum": workflows}},
        "state_ids": {"type": "array", "items": {"type": "integer", "enum": states}},
        "ticket_ids": {"type": "array", "items": {"type": "integer", "enum": tickets}, "minItems": 1},
        "parent_ticket_id": {"type": "integer", "enum": [0, *tickets]},
        "parent_ticket_state_id": {"type": "integer", "enum": [0, *states]},
    }
    suggestion: Schema = {"type": "string", "maxLength": 40}
    creates = []
    for wf in world.workflows:
        start = wf.start_state()
        props: dict[str, Schema] = {
            "workflow_id": {"type": "integer", "enum": [wf.id]},
            "transition_id": {"type": "integer", "enum": [t.id for t in wf.transitions_from(start.id)]},
            "suggestion": suggestion,
            "title": {"type": "string", "maxLength": 40},
            "parent_ticket_id": {"type": "integer", "enum": [0, *tickets]},
            "parent_ticket_state_id": {"type": "integer", "enum": [0, *states]},
        }
        required = ["workflow_id", "transition_id"]
        for key, access in start.fields.items():
            found = wf.field_def(key)
            if found is not None:
                props[key] = _field_schema(found, users)
                if access == FieldAccess.REQUIRED:
                    required.append(key)
        creates.append(
            {"type": "object", "properties": props, "required": required, "additionalProperties": False}
        )
    bodies: dict[str, Schema] = {
        "createTicket": _json_body({"oneOf": creates}),
        "handleTicket": _json_body(
            {
                "type": "object",
                "properties": {
                    "transition_id": {"type": "integer", "enum": [0, *world.transition_ids]},
                    "suggestion": suggestion,
                    **all_fields,
                },
                "required": ["transition_id"],
                "additionalProperties": False,
            }
        ),
        "updateTicketFields": _json_body(
            {
                "type": "object",
                "properties": {
                    "suggestion": suggestion,
                    "title": {"type": "string", "maxLength": 40},
                    **all_fields,
                },
                "minProperties": 1,
                "additionalProperties": False,
            }
        ),
        "changeTicketState": _json_body(
            {
                "type": "object",
                "properties": {
                    "state_id": {"type": "integer", "enum": [0, *states]},
                    "suggestion": suggestion,
                },
                "required": ["state_id"],
                "additionalProperties": False,
            }
        ),
    }
    for op_id in ("deliverTicket", "addNode"):
        bodies[op_id] = _json_body(
            {
                "type": "object",
                "properties": {
                    "target_username": {"type": "string", "enum": users},
                    "suggestion": suggestion,
                    **({"from_admin": {"type": "boolean"}} if op_id == "deliverTicket" else {}),
                },
                "required": ["target_username"],
                "additionalProperties": False,
            }
        )
    bodies["hookCallBack"] = _json_body(
        {
            "type": "object",
            "properties": {
                "result": {"type": "boolean"},
                "msg": suggestion,
                "field_value": {"type": "object", "properties": all_fields, "additionalProperties": False},
            },
            "required": ["result"],
            "additionalProperties": False,
        }
    )
    for _, _, op in operations_of(doc, PREFIX):
        for param in op.get("parameters", []):
            narrowed = (path_ids if param["in"] == "path" else query_ids).get(param["name"])
            if narrowed is not None:
                param["schema"] = narrowed
        if op["operationId"] in bodies:
            op["requestBody"] = bodies[op["operationId"]]
    return doc


def _check_body(body: Any) -> None:
    assert not (body.get("code") == -1 and str(body.get("msg", "")).startswith("internal error")), (
        f"an internal error answered as a failure envelope (a 5xx in strict mode): {body}"
    )


LOONFLOW = Dialect(PREFIX, "code", _check_body)


async def _run(api: Api, examples: int, caplog: pytest.LogCaptureFixture, *, focused: bool) -> Report:
    world = World(tuple(api.runtime.catalog.all()))

    def plan(target: Target) -> SeededPlan[list[int]]:
        return SeededPlan(
            focused=focused,
            seed=Seeder(target.session, target.base_url, target.settle).seed,
            focus=lambda doc, tickets: focus(doc, world, tickets),
            explicit=known_good_cases,
            wide_users=WIDE_USERS,
            focus_users=world.users,
        )

    return await property_run(api, LOONFLOW, examples, caplog, plan)


@RUNS
async def test_generated_requests_get_documented_answers(
    api: Api, caplog: pytest.LogCaptureFixture, pytestconfig: pytest.Config, focused: bool, examples: int
) -> None:
    report = await _run(api, examples, caplog, focused=focused)
    mode = "focused" if focused else "documented"
    label = f"loonflow {mode}, always-200 mode ({api.runtime.db.dialect})"
    conclude(report, LOONFLOW, pytestconfig, label)
    if focused:  # every route's success shape was generated and checked at least once
        assert sorted(set(report.per_operation) - set(report.successes)) == []


@pytest.fixture
async def strict_api(
    aiohttp_client: Any, database_url: str, tmp_path: Path, hook_target: tuple[HookTarget, str]
) -> Api:
    config = config_with_hook(tmp_path, hook_target[1])
    strict = await make_api(aiohttp_client, database_url, config, {"TICKETBOT_API_STRICT_STATUS": "1"})
    assert strict.runtime.settings.api_strict_status
    return strict


@SQLITE_ONLY
async def test_generated_requests_get_documented_statuses_in_strict_mode(
    strict_api: Api, caplog: pytest.LogCaptureFixture, pytestconfig: pytest.Config
) -> None:
    report = await _run(strict_api, STRICT_EXAMPLES, caplog, focused=True)
    conclude(report, LOONFLOW, pytestconfig, "loonflow focused, strict-status mode (sqlite)")
    assert sorted(set(report.per_operation) - set(report.successes)) == []
