"""The OpenAPI document of the loonflow dialect: valid, complete both ways, and true of the real app.

- The document validates as OpenAPI 3.0 (openapi-spec-validator, and schemathesis's own loader).
- Every method + path the /api/v1.0 sub-application registers is documented, and every documented
  operation is registered (the router is walked, so a new route without documentation fails).
- GET /api/openapi.json serves it without authentication.
- A property-based run (schemathesis 3 + hypothesis) against the real app on SQLite: for every
  documented operation, requests generated from the document (bounded, derandomized) are sent
  with valid loonflow signature headers, as `admin` and as normal users, to the app served by
  aiohttp's TestServer on a local port. Every answer must: not be a 5xx (nor the envelope's
  "internal error", which non-strict mode answers with HTTP 200), carry no traceback, have a
  documented status and content type, and validate against the operation's documented response
  schema. The run is repeated with strict statuses on. The number of cases run is printed in the
  terminal summary ("openapi property run: ...").
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiohttp.web_urldispatcher import PrefixedSubAppResource
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import utils as conjecture_utils
from requests.structures import CaseInsensitiveDict

with warnings.catch_warnings():  # schemathesis 3 still uses jsonschema's deprecated RefResolver
    warnings.simplefilter("ignore", DeprecationWarning)
    import schemathesis
    import schemathesis.specs.openapi.references
    import schemathesis.specs.openapi.schemas
    from openapi_spec_validator import validate as validate_spec
    from schemathesis.checks import not_a_server_error
    from schemathesis.internal.result import Ok
    from schemathesis.models import Case
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

from api.openapi import OPENAPI_PATH, PREFIX, add_openapi_route, openapi_document
from bot.app import create_app
from config.settings import load_settings
from core.workflow import CustomField, FieldAccess, FieldType, Workflow
from tests.api.conftest import CONFIG, Api, HookTarget, config_with_hook, loonflow_headers, make_api


def _many_more(self: Any) -> bool:
    """`many.more()` (removed from hypothesis's internals in recent 6.x releases) over the current
    `with many(...) as elements: for _ in elements:` protocol. hypothesis-jsonschema 0.23.1 (the
    latest release, which schemathesis 3 generates request bodies with) still calls `more()`."""
    elements = getattr(self, "_ticketbot_iter", None)
    if elements is None:
        self.__enter__()
        elements = self._ticketbot_iter = iter(self)
    try:
        next(elements)
    except StopIteration:
        self.__exit__(None, None, None)
        return False
    return True


if not hasattr(conjecture_utils.many, "more"):
    conjecture_utils.many.more = _many_more  # type: ignore[attr-defined]

EXAMPLES = 25  # generated cases per operation (plus hypothesis's shrinking of a failure)
STRICT_EXAMPLES = 10  # per operation in the strict-status run
WIDE_USERS = ("admin", "liuyang")  # the super admin and a normal user
# the focused run adds the people the seeded tickets wait for: liuyang's approver, an HR clerk (104),
# ops on duty (204) and the customer-service leader (302)
FOCUS_USERS = ("admin", "liuyang", "wangqiang", "yangfan", "sunhao", "wujuan")
AUTH_HEADERS = frozenset({"appname", "timestamp", "signature", "username", "nonce", "x-ticketbot-signature"})
Schema = dict[str, Any]
METHODS = frozenset({"get", "put", "post", "delete", "patch"})
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', "site-packages")
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# --- the document ----------------------------------------------------------------------------------


def documented_operations(doc: dict[str, Any], prefix: str = PREFIX) -> set[tuple[str, str]]:
    """The documented (METHOD, path) pairs under `prefix` (the loonflow dialect's by default; the
    work-order open API's operations are tested in test_workorder_openapi.py)."""
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        if path.startswith(prefix + "/")
        for method in item
        if method in METHODS
    }


def loonflow_subapp(app: web.Application) -> web.Application:
    for resource in app.router.resources():
        if isinstance(resource, PrefixedSubAppResource) and resource.canonical == PREFIX:
            sub = resource.get_info()["app"]
            assert isinstance(sub, web.Application)
            return sub
    raise AssertionError(f"no sub-application mounted at {PREFIX}")


def registered_operations(sub: web.Application) -> set[tuple[str, str]]:
    """(METHOD, /api/v1.0/path with {name} placeholders) of every route, HEAD left out."""
    found = set()
    for resource in sub.router.resources():
        for route in resource:
            if route.method in ("HEAD", "OPTIONS", "*"):
                continue
            path = resource.canonical  # the sub-app's resources carry the mount prefix
            found.add((route.method, path if path.startswith(PREFIX + "/") else PREFIX + path))
    return found


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
    for path, item in doc["paths"].items():
        if not path.startswith(PREFIX + "/"):
            continue  # the open API's envelope: test_workorder_openapi.py
        for method, op in item.items():
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
    registered = registered_operations(loonflow_subapp(app))
    documented = documented_operations(openapi_document())
    assert registered, "the loonflow sub-application registers no route"
    assert sorted(registered - documented) == [], "registered but not documented"
    assert sorted(documented - registered) == [], "documented but not registered"


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
# Two runs per mode. "documented": requests generated from the document as served (any id, any
# value the document allows), against a few seeded tickets. "focused": the same document with the
# request side narrowed to the seeded world (path ids among fresh tickets, the configured workflow,
# state, transition ids and users; create/handle bodies with the workflows' real custom fields and
# value types), so that the success answers of every route are generated and validated too. The
# response side, the object of the test, is never changed. Before each operation of a focused run
# fresh tickets are created, so that earlier operations (delete, close...) don't starve later ones.


@dataclass
class Report:
    cases: int = 0
    per_operation: dict[str, int] = field(default_factory=dict)
    successes: dict[str, int] = field(default_factory=dict)  # answers with code 0
    failures: list[str] = field(default_factory=list)


class _Summary:
    """A pytest plugin registered at run time: prints the case counts in the terminal summary."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.lines:
            terminalreporter.write_sep("-", "openapi property run")
            for line in self.lines:
                terminalreporter.write_line(line)


@pytest.fixture
def summary(request: pytest.FixtureRequest) -> _Summary:
    manager = request.config.pluginmanager
    found = manager.get_plugin("ticketbot-openapi-summary")
    if not isinstance(found, _Summary):
        found = _Summary()
        manager.register(found, "ticketbot-openapi-summary")
    return found


@dataclass(frozen=True)
class World:
    """What the shipped config holds: the focused run draws its ids and values from it."""

    base_url: str
    workflows: tuple[Workflow, ...]
    users: tuple[str, ...] = FOCUS_USERS
    hooks_settled: Callable[[], None] = lambda: None  # every due hook call made (blocking)

    @property
    def state_ids(self) -> list[int]:
        return sorted(s.id for wf in self.workflows for s in wf.states)

    @property
    def transition_ids(self) -> list[int]:
        return sorted(t.id for wf in self.workflows for t in wf.transitions)


class Seeder:
    """Creates fresh tickets over HTTP (blocking; from the run's thread)."""

    def __init__(
        self, session: requests.Session, base_url: str, hooks_settled: Callable[[], None] = lambda: None
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.hooks_settled = hooks_settled

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
        self.hooks_settled()  # the hook was called: its callback is accepted
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


def known_good_cases(operation: Any, ticket_ids: list[int]) -> list[tuple[Case, str]]:
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
        kwargs: dict[str, Any] = {"path_parameters": path_parameters or None, "query": query}
        if body is not None:
            kwargs["body"] = body
            kwargs["media_type"] = "application/json"
        out.append((operation.make_case(**kwargs), username))
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
    for item in doc["paths"].values():
        for method, op in item.items():
            if method not in METHODS:
                continue
            for param in op.get("parameters", []):
                narrowed = (path_ids if param["in"] == "path" else query_ids).get(param["name"])
                if narrowed is not None:
                    param["schema"] = narrowed
            if op["operationId"] in bodies:
                op["requestBody"] = bodies[op["operationId"]]
    return doc


def _without_auth(headers: Mapping[str, Any] | None) -> CaseInsensitiveDict[Any]:
    return CaseInsensitiveDict({k: v for k, v in (headers or {}).items() if k.lower() not in AUTH_HEADERS})


def _check_answer(case: Case, response: Any) -> Any:
    assert isinstance(response, requests.Response)
    text = response.text
    for marker in TRACE_MARKERS:
        assert marker not in text, f"the answer carries a traceback ({marker!r}): {text[:2000]}"
    case.validate_response(response, checks=CHECKS)
    body = response.json()
    assert not (body.get("code") == -1 and str(body.get("msg", "")).startswith("internal error")), (
        f"an internal error answered as a failure envelope (a 5xx in strict mode): {body}"
    )
    return body


def _operation_test(
    operation: Any,
    users: tuple[str, ...],
    examples: int,
    session: requests.Session,
    report: Report,
    explicit: list[tuple[Case, str]],
) -> Callable[[], None]:
    """The hypothesis test of one operation: generated case + acting user -> call -> checks."""
    name = operation.verbose_name
    last: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        report_multiple_bugs=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), username=st.sampled_from(users))
    def check(case: Case, username: str) -> None:
        case.headers = _without_auth(case.headers)
        headers = loonflow_headers(username)
        report.cases += 1
        report.per_operation[name] = report.per_operation.get(name, 0) + 1
        response = case.call(session=session, headers=headers, timeout=60)
        try:
            body = _check_answer(case, response)
        except Exception:
            last[:] = [case.as_curl_command(headers=headers), response.text[:1500]]
            raise
        if body.get("code") == 0:
            report.successes[name] = report.successes.get(name, 0) + 1

    test = check
    for case, username in explicit:
        test = example(case=case, username=username)(test)

    def run() -> None:
        try:
            test()
        except Exception as exc:
            curl, answer = last if last else ("?", "?")
            report.failures.append(f"{name} as generated: {exc}\n  request: {curl}\n  answer: {answer}")

    return run


def run_operations(world: World, examples: int, *, focused: bool) -> Report:
    """Every documented operation, `examples` generated cases each, sent over HTTP. Blocking: run
    it in a thread while the event loop serves the app."""
    report = Report()
    with requests.Session() as session:
        session.trust_env = False  # never through a proxy of the environment
        seeder = Seeder(session, world.base_url, world.hooks_settled)
        seeder.seed()  # small generated ids hit these
        for method, path in sorted(documented_operations(openapi_document()), key=lambda mp: (mp[1], mp[0])):
            doc = openapi_document()
            users: tuple[str, ...] = WIDE_USERS
            fresh: list[int] = []
            if focused:
                fresh = seeder.seed()
                doc, users = focus(doc, world, fresh), world.users
            schema = schemathesis.from_dict(doc, base_url=world.base_url, validate_schema=False)
            operation = schema[path][method]
            explicit = known_good_cases(operation, fresh) if focused else []
            _operation_test(operation, users, examples, session, report, explicit)()
    return report


def _errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    for record in caplog.records:
        if record.levelno >= logging.ERROR and record.name.startswith("ticketbot"):
            yield f"{record.name}: {record.getMessage()} {getattr(record, 'path', '')}"


async def _property_run(
    api: Api, examples: int, caplog: pytest.LogCaptureFixture, *, focused: bool
) -> Report:
    server = api.client.server
    loop = asyncio.get_running_loop()

    def hooks_settled() -> None:
        asyncio.run_coroutine_threadsafe(api.hooks_settled(), loop).result(timeout=60)

    world = World(
        f"http://{server.host}:{server.port}", tuple(api.runtime.catalog.all()), hooks_settled=hooks_settled
    )
    with caplog.at_level(logging.ERROR):
        report = await asyncio.to_thread(run_operations, world, examples, focused=focused)
    report.failures.extend(f"logged: {line}" for line in _errors_logged(caplog))
    return report


def _conclude(report: Report, summary: _Summary, label: str) -> None:
    operations = len(report.per_operation)
    succeeded = sum(report.successes.values())
    line = (
        f"{label}: {report.cases} cases over {operations} operations, {succeeded} answered code 0 "
        f"({len(report.successes)} operations with a success)"
    )
    summary.lines.append(line)
    print(line)  # shown with -s
    assert operations == len(documented_operations(openapi_document()))
    assert report.cases > 0
    assert not report.failures, f"{len(report.failures)} failure(s):\n\n" + "\n\n".join(report.failures)


@SQLITE_ONLY
@pytest.mark.parametrize("focused", [False, True], ids=["documented", "focused"])
async def test_generated_requests_get_documented_answers(
    api: Api, caplog: pytest.LogCaptureFixture, summary: _Summary, focused: bool
) -> None:
    report = await _property_run(api, EXAMPLES, caplog, focused=focused)
    _conclude(report, summary, f"{'focused' if focused else 'documented'}, always-200 mode (sqlite)")
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
    strict_api: Api, caplog: pytest.LogCaptureFixture, summary: _Summary
) -> None:
    report = await _property_run(strict_api, STRICT_EXAMPLES, caplog, focused=True)
    _conclude(report, summary, "focused, strict-status mode (sqlite)")
