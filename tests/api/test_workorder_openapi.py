"""The open API's part of the OpenAPI document, and its property-based run against the real app.

- The document is complete both ways against the /open-api sub-application of the real app (the
  router is walked), and every operation answers the errcode envelope (a success HTTP 200 with
  errcode 0, each refusal status the WorkOrderFailure schema).
- A property-based run (tests/api/openapi_run.py, shared with test_openapi.py's run of the
  loonflow dialect: schemathesis 3 + hypothesis, derandomized) sends generated requests for every
  documented /open-api operation to the real app, with valid signature headers, as `admin` and as
  normal users. Every answer must not be a 5xx (nor errcode 50001) nor carry a trace, and must
  have a documented status, content type and schema; every refusal (not 2xx, or an errcode other
  than 0) must leave the database unchanged (row counts and a digest of every table's rows).
  Runs: "documented" (the document as served, against orders seeded once) and "focused" (order
  numbers, templates and staff drawn from freshly seeded orders, with explicit cases: every
  operation answers errcode 0 at least once), 25 generated cases per operation each, on SQLite;
  the focused one again on PostgreSQL (10 per operation). The open API answers refusals with 4xx
  statuses always (no always-200 mode), so there is no strict-status run. The case counts are
  printed in the terminal summary ("openapi property run").
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from api.openapi import openapi_document
from api.workorder.errcodes import ErrCode
from tests.api.conftest import Api, loonflow_headers
from tests.api.openapi_run import (
    RUNS,
    SQLITE_ONLY,
    Dialect,
    Explicit,
    SeededPlan,
    Target,
    assert_documented_exactly,
    conclude,
    documented_operations,
    explicit_case,
    operations_of,
    property_run,
)
from tests.api.workorder_harness import BASIC, TEMPLATE, components

PREFIX = "/open-api"
OPS = PREFIX + "/workorder"
USERS = ("admin", "liuyang", "xuli")
FAILURES = {"400", "401", "403", "404", "409", "413"}


def test_every_operation_answers_the_errcode_envelope() -> None:
    doc = openapi_document()
    operations = documented_operations(doc, prefix=PREFIX)
    assert len(operations) == 13
    for path, method, op in operations_of(doc, PREFIX):
        where = f"{method.upper()} {path}"
        assert op["operationId"] and op["summary"] and op["tags"] == ["work orders"], where
        assert set(op["responses"]) == {"200"} | FAILURES, where
        success = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert success["properties"]["errcode"] == {"type": "integer", "enum": [0]}, where
        for status in FAILURES:
            schema = op["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/WorkOrderFailure"}, where
    failure = doc["components"]["schemas"]["WorkOrderFailure"]
    assert failure["properties"]["errcode"]["enum"] == sorted(int(c) for c in ErrCode if c != ErrCode.OK)
    detail = doc["components"]["schemas"]["WorkOrder"]["required"]
    assert len(detail) == 36  # every key of the seed's work_order


@SQLITE_ONLY
async def test_document_lists_exactly_the_registered_routes(api: Api) -> None:
    app = api.client.app
    assert app is not None
    assert_documented_exactly(app, PREFIX)


# --- the property-based run -----------------------------------------------------------------------------


class Seeder:
    """Fresh orders over HTTP (blocking; from the run's thread): 0 and 1 waiting to be accepted,
    2 accepted by xuli, 3 closed by admin."""

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    def call(self, path: str, username: str, body: dict[str, Any]) -> Any:
        resp = self.session.post(
            f"{self.base_url}{OPS}/{path}", json=body, headers=loonflow_headers(username), timeout=60
        )
        answer = resp.json()
        assert resp.status_code == 200 and answer["errcode"] == 0, (path, body, answer)
        return answer

    def seed(self) -> list[str]:
        numbers = [
            self.call("create", "liuyang", {"template_id": TEMPLATE, "component_list": BASIC})["order_no"]
            for _ in range(4)
        ]
        self.call("accept", "xuli", {"order_no": numbers[2]})
        self.call("close", "admin", {"order_no": numbers[3]})
        return numbers


GOOD: dict[str, list[tuple[str, int | None, dict[str, Any] | None, dict[str, Any] | None]]] = {
    "workOrderDetail": [("liuyang", 0, None, None), ("xuli", 2, None, None)],
    "workOrderList": [("liuyang", None, {"limit": 2}, None)],
    "workOrderTemplates": [("liuyang", None, {"template_type": 1}, None)],
    "workOrderCreate": [("liuyang", None, None, {"template_id": TEMPLATE, "component_list": BASIC})],
    "workOrderSwitch": [("xuli", 2, None, {"handler_id": "HePing", "content": {"text": "yours"}})],
    "workOrderAccept": [("xuli", 1, None, {})],
    "workOrderReply": [("liuyang", 0, None, {"content": {"text": "hurry"}})],
    "workOrderClose": [("admin", 0, None, {"content": {"text": "dup"}})],
    "workOrderReopen": [("liuyang", 3, None, {"content": {"text": "again"}})],
    "workOrderEvaluate": [("liuyang", 3, None, {"point": 5})],
    "workOrderCc": [("liuyang", 0, None, {"cc_list": ["ZhaoLei"]})],
    "workOrderShare": [("liuyang", 0, None, {})],
    "workOrderLinkMessages": [
        ("xuli", 2, None, {"records": [{"msgid": "m-1", "msgtime": 1767603600, "text": "hi"}]})
    ],
}


def focus(doc: dict[str, Any], numbers: list[str]) -> dict[str, Any]:
    """`doc` with order numbers and template ids drawn from the seeded world (and an unknown one)."""
    order: dict[str, Any] = {"type": "string", "enum": [*numbers, "1470000000000999999"]}
    template: dict[str, Any] = {"type": "integer", "enum": [TEMPLATE, 2, 1, 99]}
    staff: dict[str, Any] = {
        "type": "array",
        "items": {"type": "string", "enum": ["ZhaoLei", "xuli", "Ghost"]},
    }
    parts: dict[str, Any] = {
        "type": "array",
        "items": {"type": "object"},
        "enum": [BASIC, components(priority=["高"])],
    }
    for _, _, op in operations_of(doc, PREFIX):
        for param in op.get("parameters", []):
            if param["name"] == "order_no":
                param["schema"] = order
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body is not None:
            props = body["properties"]
            for name, schema in (("order_no", order), ("template_id", template), ("cc_list", staff)):
                if name in props:
                    props[name] = schema
            if "component_list" in props:
                props["component_list"] = parts
    return doc


def good_cases(operation: Any, numbers: list[str]) -> Explicit:
    """The GOOD cases of `operation` as schemathesis cases on the seeded order `numbers`."""
    out = []
    for username, index, query, body in GOOD.get(operation.definition.raw["operationId"], []):
        params = dict(query or {})
        if index is not None and body is None:
            params["order_no"] = numbers[index]
        if body is not None and index is not None:
            body = {**body, "order_no": numbers[index]}
        out.append((explicit_case(operation, query=params, body=body), username))
    return out


def _check_body(body: Any) -> None:
    assert body.get("errcode") != ErrCode.INTERNAL, f"an internal error: {body}"


OPEN_API = Dialect(PREFIX, "errcode", _check_body)


@RUNS
async def test_generated_requests_get_documented_answers(
    api: Api, caplog: pytest.LogCaptureFixture, pytestconfig: pytest.Config, focused: bool, examples: int
) -> None:

    def plan(target: Target) -> SeededPlan[list[str]]:
        return SeededPlan(
            focused=focused,
            seed=Seeder(target.session, target.base_url).seed,
            focus=focus,
            explicit=good_cases,
            wide_users=USERS,
            focus_users=USERS,
        )

    report = await property_run(api, OPEN_API, examples, caplog, plan)
    backend = api.runtime.db.dialect
    conclude(report, OPEN_API, pytestconfig, f"open api {'focused' if focused else 'documented'} ({backend})")
    assert len(report.per_operation) == 13
    if focused:  # every route's success shape was generated and checked at least once
        assert sorted(set(report.per_operation) - set(report.successes)) == []
