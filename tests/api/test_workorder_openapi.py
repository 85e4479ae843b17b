"""The open API's part of the OpenAPI document: complete both ways against the /open-api
sub-application of the real app, every operation in the errcode envelope, and true of the app: a
property-based run (schemathesis + hypothesis, derandomized) sends generated requests for every
documented /open-api operation to the real app on SQLite, with order numbers and templates drawn
from freshly seeded orders and explicit cases that succeed, and checks that no answer is a 5xx or
carries a trace, and that each has a documented status, content type and schema."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import requests
from aiohttp import web
from aiohttp.web_urldispatcher import PrefixedSubAppResource

from api.openapi import openapi_document
from api.workorder.errcodes import ErrCode
from tests.api.conftest import Api, loonflow_headers
from tests.api.test_openapi import (
    METHODS,
    SQLITE_ONLY,
    Report,
    _check_answer,
    _errors_logged,
    _without_auth,
    documented_operations,
)
from tests.api.workorder_harness import BASIC, TEMPLATE, components

PREFIX = "/open-api"
OPS = PREFIX + "/workorder"
EXAMPLES = 15
USERS = ("admin", "liuyang", "xuli")
FAILURES = {"400", "401", "403", "404", "409", "413"}


def open_api_subapp(app: web.Application) -> web.Application:
    for resource in app.router.resources():
        if isinstance(resource, PrefixedSubAppResource) and resource.canonical == PREFIX:
            sub = resource.get_info()["app"]
            assert isinstance(sub, web.Application)
            return sub
    raise AssertionError(f"no sub-application mounted at {PREFIX}")


def test_every_operation_answers_the_errcode_envelope() -> None:
    doc = openapi_document()
    operations = documented_operations(doc, prefix=PREFIX)
    assert len(operations) == 13
    for path, item in doc["paths"].items():
        if not path.startswith(PREFIX + "/"):
            continue
        for method, op in item.items():
            if method not in METHODS:
                continue
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
    sub = open_api_subapp(app)
    registered = set()
    for resource in sub.router.resources():
        for route in resource:
            if route.method not in ("HEAD", "OPTIONS", "*"):
                registered.add((route.method, resource.canonical))
    assert registered == documented_operations(openapi_document(), prefix=PREFIX)


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
    for path, item in doc["paths"].items():
        if not path.startswith(PREFIX + "/"):
            continue
        for method, op in item.items():
            if method not in METHODS:
                continue
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


def good_cases(operation: Any, numbers: list[str]) -> list[Any]:
    out = []
    for username, index, query, body in GOOD.get(operation.definition.raw["operationId"], []):
        kwargs: dict[str, Any] = {"query": dict(query or {})}
        if index is not None and body is None:
            kwargs["query"]["order_no"] = numbers[index]
        if body is not None:
            kwargs["body"] = {**body, **({"order_no": numbers[index]} if index is not None else {})}
            kwargs["media_type"] = "application/json"
        out.append((operation.make_case(**kwargs), username))
    return out


def check_operation(
    operation: Any, examples: int, session: requests.Session, report: Report, explicit: list[Any]
) -> None:
    """The hypothesis test of one operation: generated case + acting user -> call -> checks."""
    from hypothesis import HealthCheck, Phase, example, given, settings
    from hypothesis import strategies as st

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
    @given(case=operation.as_strategy(), username=st.sampled_from(USERS))
    def check(case: Any, username: str) -> None:
        case.headers = _without_auth(case.headers)
        headers = loonflow_headers(username)
        report.cases += 1
        report.per_operation[name] = report.per_operation.get(name, 0) + 1
        response = case.call(session=session, headers=headers, timeout=60)
        try:
            body = _check_answer(case, response)
            assert body.get("errcode") != ErrCode.INTERNAL, body
        except Exception:
            last[:] = [case.as_curl_command(headers=headers), response.text[:1500]]
            raise
        if body.get("errcode") == 0:
            report.successes[name] = report.successes.get(name, 0) + 1

    test = check
    for case, username in explicit:
        test = example(case=case, username=username)(test)
    try:
        test()
    except Exception as exc:
        curl, answer = last if last else ("?", "?")
        report.failures.append(f"{name}: {exc}\n  request: {curl}\n  answer: {answer}")


def run(base_url: str, examples: int) -> Report:
    import schemathesis

    report = Report()
    with requests.Session() as session:
        session.trust_env = False
        seeder = Seeder(session, base_url)
        for method, path in sorted(documented_operations(openapi_document(), prefix=PREFIX)):
            numbers = seeder.seed()
            doc = focus(openapi_document(), numbers)
            operation = schemathesis.from_dict(doc, base_url=base_url, validate_schema=False)[path][method]
            check_operation(operation, examples, session, report, good_cases(operation, numbers))
    return report


@SQLITE_ONLY
async def test_generated_requests_get_documented_answers(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    server = api.client.server
    base_url = f"http://{server.host}:{server.port}"
    with caplog.at_level(logging.ERROR):
        report = await asyncio.to_thread(run, base_url, EXAMPLES)
    report.failures.extend(f"logged: {line}" for line in _errors_logged(caplog))
    print(f"open api property run: {report.cases} cases, successes per operation: {report.successes}")
    assert len(report.per_operation) == 13
    assert not report.failures, "\n\n".join(report.failures)
    assert sorted(set(report.per_operation) - set(report.successes)) == []  # every route succeeded
