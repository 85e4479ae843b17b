"""GET /api/v1.0/workflows... against the real app and the shipped workflows (config/workflows/*.yaml),
on SQLite and PostgreSQL: every route, the shapes key by key, 404s and the app's workflow limits."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import RUNTIME, create_app
from config.settings import load_settings
from tests.api.conftest import CONFIG, Api, loonflow_headers

STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\Z")
WORKFLOW_KEYS = {
    "id",
    "name",
    "description",
    "notices",
    "view_permission_check",
    "limit_expression",
    "display_form_str",
    "title_template",
    "creator",
    "gmt_created",
    "gmt_modified",
}
STATE_KEYS = {
    "id",
    "name",
    "workflow_id",
    "is_hidden",
    "order_id",
    "type_id",
    "enable_retreat",
    "remember_last_man_enable",
    "participant_type_id",
    "participant",
    "participant_info",
    "distribute_type_id",
    "state_field_str",
    "label",
    "creator",
    "gmt_created",
    "gmt_modified",
}
TRANSITION_KEYS = {
    "id",
    "name",
    "workflow_id",
    "transition_type_id",
    "timer",
    "source_state_id",
    "destination_state_id",
    "condition_expression",
    "attribute_type_id",
    "field_require_check",
    "alert_enable",
    "alert_text",
    "source_state_info",
    "destination_state_info",
    "creator",
    "gmt_created",
    "gmt_modified",
}
FIELD_KEYS = {
    "field_key",
    "field_name",
    "field_type_id",
    "order_id",
    "default_value",
    "description",
    "placeholder",
    "field_template",
    "boolean_field_display",
    "field_choice",
    "label",
}


def _stamped(item: dict[str, Any]) -> dict[str, Any]:
    """`item` without creator/gmt_* after checking them."""
    assert item["creator"] == "admin"
    assert STAMP.match(item["gmt_created"]), item["gmt_created"]
    assert STAMP.match(item["gmt_modified"]), item["gmt_modified"]
    assert item["gmt_created"] <= item["gmt_modified"]
    return {k: v for k, v in item.items() if k not in ("creator", "gmt_created", "gmt_modified")}


async def _ok(api: Api, path: str, **params: str) -> Any:
    status, body = await api.call("GET", path, params=params or None)
    assert status == 200
    assert body["code"] == 0, body
    assert body["msg"] == ""
    return body["data"]


async def _fail(api: Api, path: str, msg: str, **params: str) -> None:
    status, body = await api.call("GET", path, params=params or None)
    assert (status, body) == (200, {"code": -1, "msg": msg, "data": {}})


# --- /workflows --------------------------------------------------------------------------------------


async def test_list_workflows(api: Api) -> None:
    data = await _ok(api, "workflows")
    assert set(data) == {"value", "page", "per_page", "total"}
    assert (data["page"], data["per_page"], data["total"]) == (1, 10, 3)
    assert [w["id"] for w in data["value"]] == [1, 2, 3]
    for item in data["value"]:
        assert set(item) == WORKFLOW_KEYS
    assert _stamped(data["value"][0]) == {
        "id": 1,
        "name": "请假申请",
        "description": "员工请假：直属领导审批，超过 3 天由总经理审批，人事备案。",
        "notices": "",
        "view_permission_check": True,
        "limit_expression": "{}",
        "display_form_str": '["leave_type", "start_date", "end_date", "days"]',
        "title_template": "{creator} 请假 {days} 天",
    }
    assert json.loads(data["value"][2]["display_form_str"]) == ["customer_name", "category", "priority"]


async def test_list_workflows_filter_and_pages(api: Api) -> None:
    assert [w["id"] for w in (await _ok(api, "workflows", name="请假"))["value"]] == [1]
    found = await _ok(api, "workflows", name="it 权限")  # case-insensitive substring
    assert ([w["name"] for w in found["value"]], found["total"]) == (["IT 权限申请"], 1)
    assert (await _ok(api, "workflows", name="nothing-like-this"))["value"] == []
    page2 = await _ok(api, "workflows", page="2", per_page="2")
    assert ([w["id"] for w in page2["value"]], page2["page"], page2["per_page"], page2["total"]) == (
        [3],
        2,
        2,
        3,
    )
    past = await _ok(api, "workflows", page="9", per_page="2")
    assert (past["value"], past["total"]) == ([], 3)
    await _fail(api, "workflows", "'page' must be an integer, got 'abc'", page="abc")
    await _fail(api, "workflows", "'per_page' must be at least 1, got 0", per_page="0")
    await _fail(api, "workflows", "'per_page' must be at most 1000, got 1001", per_page="1001")


async def test_workflow_detail(api: Api) -> None:
    listed = (await _ok(api, "workflows"))["value"]
    for item in listed:
        assert await _ok(api, f"workflows/{item['id']}") == item


async def test_unknown_workflow_everywhere(api: Api) -> None:
    for suffix in ("", "/init_state", "/states", "/transitions", "/custom_fields"):
        await _fail(api, f"workflows/99{suffix}", "workflow 99 does not exist")
    await _fail(api, "workflows/0", "'workflow_id' must be at least 1, got 0")
    status, body = await api.call("GET", "workflows/abc")
    assert (status, body["code"]) == (200, -1)


# --- init_state --------------------------------------------------------------------------------------


async def test_init_state(api: Api) -> None:
    data = await _ok(api, "workflows/1/init_state")
    assert set(data) == STATE_KEYS | {"field_list", "transition"}
    fields = data.pop("field_list")
    transitions = data.pop("transition")
    assert _stamped(data) == {
        "id": 101,
        "name": "发起人-新建中",
        "workflow_id": 1,
        "is_hidden": False,
        "order_id": 1,
        "type_id": 1,
        "enable_retreat": False,
        "remember_last_man_enable": False,
        "participant_type_id": 5,
        "participant": "creator",
        "participant_info": {
            "participant": "creator",
            "participant_name": "creator",
            "participant_type_id": 5,
            "participant_type_name": "变量",
            "participant_alias": "工单创建人",
        },
        "distribute_type_id": 2,
        "state_field_str": {
            "title": 3,
            "leave_type": 2,
            "start_date": 2,
            "end_date": 2,
            "days": 2,
            "reason": 2,
            "proxy": 3,
        },
        "label": {},
    }
    assert transitions == [
        {
            "transition_id": 151,
            "transition_name": "提交",
            "attribute_type_id": 1,
            "field_require_check": True,
            "is_accept": False,
            "in_add_node": False,
            "enable_alert": False,
            "alert_enable": False,
            "alert_text": "",
        }
    ]
    assert [(f["field_key"], f["field_attribute"]) for f in fields] == [
        ("leave_type", 2),
        ("start_date", 2),
        ("end_date", 2),
        ("days", 2),
        ("reason", 2),
        ("proxy", 3),
        ("title", 3),  # built-in, order_id 20
    ]
    for f in fields:
        assert set(f) == FIELD_KEYS | {"field_value", "field_attribute"}
        assert f["field_value"] is None
    assert fields[0] == {
        "field_key": "leave_type",
        "field_name": "请假类型",
        "field_type_id": 45,
        "order_id": 1,
        "default_value": "annual",
        "description": "",
        "placeholder": "",
        "field_template": "",
        "boolean_field_display": {},
        "field_choice": {
            "annual": "年假",
            "sick": "病假",
            "personal": "事假",
            "marriage": "婚假",
            "maternity": "产假",
        },
        "label": {},
        "field_value": None,
        "field_attribute": 2,
    }
    assert fields[-1] == {
        "field_key": "title",
        "field_name": "标题",
        "field_type_id": 5,
        "order_id": 20,
        "default_value": None,
        "description": "工单的标题",
        "placeholder": "",
        "field_template": "",
        "boolean_field_display": {},
        "field_choice": {},
        "label": {},
        "field_value": None,
        "field_attribute": 3,
    }


async def test_init_state_of_each_workflow(api: Api) -> None:
    second = await _ok(api, "workflows/2/init_state")
    assert (second["id"], [t["transition_id"] for t in second["transition"]]) == (201, [251])
    assert [f["field_key"] for f in second["field_list"]] == ["system", "access_level", "reason", "expires"]
    third = await _ok(api, "workflows/3/init_state")
    assert (third["id"], [t["transition_id"] for t in third["transition"]]) == (301, [351])
    assert {f["field_key"]: f["field_attribute"] for f in third["field_list"]} == {
        "customer_name": 2,
        "customer_id": 3,
        "category": 2,
        "priority": 2,
        "description": 2,
        "attachments": 3,
    }


# --- states ------------------------------------------------------------------------------------------


async def test_states(api: Api) -> None:
    data = await _ok(api, "workflows/2/states")
    assert (data["page"], data["per_page"], data["total"]) == (1, 10, 7)
    states = data["value"]
    assert [s["id"] for s in states] == [201, 202, 203, 204, 205, 206, 207]
    for s in states:
        assert set(s) == STATE_KEYS
        assert s["workflow_id"] == 2
    by_id = {s["id"]: _stamped(s) for s in states}
    assert by_id[203] == {
        "id": 203,
        "name": "安全会签",
        "workflow_id": 2,
        "is_hidden": False,
        "order_id": 3,
        "type_id": 0,
        "enable_retreat": True,
        "remember_last_man_enable": False,
        "participant_type_id": 2,
        "participant": "lina,zhaolei",
        "participant_info": {
            "participant": "lina,zhaolei",
            "participant_name": "lina,zhaolei",
            "participant_type_id": 2,
            "participant_type_name": "多人",
            "participant_alias": "李娜,赵磊",
        },
        "distribute_type_id": 4,
        "state_field_str": {"system": 1, "access_level": 1, "reason": 1, "expires": 1},
        "label": {},
    }
    assert (by_id[204]["participant"], by_id[204]["participant_info"]["participant_alias"]) == (
        "2",
        "运维值班",
    )
    assert by_id[204]["distribute_type_id"] == 1
    assert by_id[202]["participant_info"]["participant_alias"] == "工单创建人tl"
    assert (by_id[207]["type_id"], by_id[207]["participant_type_id"], by_id[207]["participant"]) == (2, 0, "")


async def test_hook_participant_shows_the_url_never_the_token(api: Api) -> None:
    status, body = await api.call("GET", "workflows/2/states")
    assert status == 200
    hook = next(s for s in body["data"]["value"] if s["id"] == 205)
    url = api.runtime.settings.config_dir.joinpath("workflows", "it_access.yaml").read_text("utf-8")
    configured = url.split("url: ", 1)[1].split()[0]  # the shipped URL, pointed at the test's hook target
    assert configured.startswith("http://127.0.0.1:") and configured.endswith("/hook")
    assert (hook["participant_type_id"], hook["participant"]) == (10, configured)
    assert hook["participant_info"]["participant_alias"] == configured
    for path in ("workflows/2/states", "workflows/states/205", "workflows/2", "workflows/2/transitions"):
        status, body = await api.call("GET", path)
        assert body["code"] == 0
        text = json.dumps(body, ensure_ascii=False)
        assert "demo-hook-token" not in text
        assert "hook_token" not in text


async def test_states_pages_and_search(api: Api) -> None:
    page = await _ok(api, "workflows/2/states", page="2", per_page="3")
    assert ([s["id"] for s in page["value"]], page["total"]) == ([204, 205, 206], 7)
    found = await _ok(api, "workflows/1/states", search_value="审批")
    assert [s["id"] for s in found["value"]] == [102, 103]
    assert found["total"] == 2


async def test_one_state(api: Api) -> None:
    listed = {s["id"]: s for s in (await _ok(api, "workflows/3/states"))["value"]}
    for state_id in (301, 302, 303, 304, 305):
        assert await _ok(api, f"workflows/states/{state_id}") == listed[state_id]
    dept = await _ok(api, "workflows/states/302")
    assert dept["participant_info"] == {
        "participant": "5",
        "participant_name": "5",
        "participant_type_id": 3,
        "participant_type_name": "部门",
        "participant_alias": "客服部",
    }
    await _fail(api, "workflows/states/999", "state 999 does not exist")


# --- transitions -------------------------------------------------------------------------------------


async def test_transitions(api: Api) -> None:
    first = await _ok(api, "workflows/2/transitions")
    assert (len(first["value"]), first["page"], first["per_page"], first["total"]) == (10, 1, 10, 12)
    data = await _ok(api, "workflows/2/transitions", per_page="50")
    items = data["value"]
    assert [t["id"] for t in items] == list(range(251, 263))
    for t in items:
        assert set(t) == TRANSITION_KEYS
    by_id = {t["id"]: _stamped(t) for t in items}
    assert by_id[252] == {
        "id": 252,
        "name": "同意",
        "workflow_id": 2,
        "transition_type_id": 1,
        "timer": 0,
        "source_state_id": 202,
        "destination_state_id": 204,
        "condition_expression": '[{"expression": "{access_level} == \'admin\'", "target_state_id": 203}]',
        "attribute_type_id": 1,
        "field_require_check": True,
        "alert_enable": False,
        "alert_text": "",
        "source_state_info": {"id": 202, "name": "直属领导审批"},
        "destination_state_info": {"id": 204, "name": "运维处理"},
    }
    assert json.loads(by_id[252]["condition_expression"]) == [
        {"expression": "{access_level} == 'admin'", "target_state_id": 203}
    ]
    assert (by_id[262]["transition_type_id"], by_id[262]["timer"]) == (2, 3 * 24 * 3600)
    assert (by_id[262]["attribute_type_id"], by_id[262]["condition_expression"]) == (3, "[]")
    assert by_id[257]["alert_enable"] is True
    assert by_id[257]["alert_text"] == "确定退回给申请人补充信息吗？"
    assert (by_id[253]["attribute_type_id"], by_id[253]["field_require_check"]) == (2, False)


async def test_transitions_search(api: Api) -> None:
    found = await _ok(api, "workflows/1/transitions", search_value="驳回")
    assert ([t["id"] for t in found["value"]], found["total"]) == ([153, 155], 2)


# --- custom fields -----------------------------------------------------------------------------------


async def test_custom_fields(api: Api) -> None:
    data = await _ok(api, "workflows/1/custom_fields")
    assert (data["page"], data["per_page"], data["total"]) == (1, 10, 6)
    fields = data["value"]
    assert [f["field_key"] for f in fields] == [
        "leave_type",
        "start_date",
        "end_date",
        "days",
        "reason",
        "proxy",
    ]
    for f in fields:
        assert set(f) == FIELD_KEYS | {"workflow_id", "creator", "gmt_created", "gmt_modified"}
        assert f["workflow_id"] == 1
    by_key = {f["field_key"]: _stamped(f) for f in fields}
    assert by_key["days"] == {
        "workflow_id": 1,
        "field_key": "days",
        "field_name": "请假天数",
        "field_type_id": 10,
        "order_id": 4,
        "default_value": 1,
        "description": "工作日天数；超过 3 天需总经理审批",
        "placeholder": "",
        "field_template": "",
        "boolean_field_display": {},
        "field_choice": {},
        "label": {},
    }
    assert (by_key["start_date"]["field_type_id"], by_key["start_date"]["placeholder"]) == (25, "2024-05-01")
    assert (by_key["proxy"]["field_type_id"], by_key["reason"]["field_type_id"]) == (60, 55)


async def test_custom_fields_search(api: Api) -> None:
    by_key = await _ok(api, "workflows/3/custom_fields", search_value="customer")
    assert [f["field_key"] for f in by_key["value"]] == ["customer_name", "customer_id"]
    by_name = await _ok(api, "workflows/3/custom_fields", search_value="满意")
    assert [f["field_key"] for f in by_name["value"]] == ["satisfaction"]
    by_description = await _ok(api, "workflows/3/custom_fields", search_value="external_userid")
    assert [f["field_key"] for f in by_description["value"]] == ["customer_id"]


# --- an app limited to some workflows -------------------------------------------------------------------


@pytest.fixture
async def narrow(tmp_path: Path, database_url: str, aiohttp_client: Any) -> Api:
    """The real app over a copy of the shipped config with one more app, `narrow`, limited to workflow 1."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    apps = config / "apps.yaml"
    apps.write_text(
        apps.read_text(encoding="utf-8") + "  - name: narrow\n    token: narrow-token\n    workflows: [1]\n",
        encoding="utf-8",
    )
    settings = load_settings(env={}, database_url=database_url, config_dir=config)
    app = await create_app(settings)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    return Api(client, app[RUNTIME])


async def _narrow(api: Api, path: str) -> tuple[int, Any]:
    return await api.call("GET", path, headers=loonflow_headers("admin", app="narrow", token="narrow-token"))


async def test_app_sees_only_its_workflows(narrow: Api) -> None:
    status, body = await _narrow(narrow, "workflows")
    assert (status, body["code"]) == (200, 0)
    assert ([w["id"] for w in body["data"]["value"]], body["data"]["total"]) == ([1], 1)
    for path in ("workflows/1", "workflows/1/init_state", "workflows/1/states", "workflows/states/101"):
        status, body = await _narrow(narrow, path)
        assert body["code"] == 0, (path, body)
    # the demo app of the same config still sees everything
    status, body = await narrow.call("GET", "workflows")
    assert body["data"]["total"] == 3


@pytest.mark.parametrize(
    ("path", "workflow_id"),
    [
        ("workflows/2", 2),
        ("workflows/2/init_state", 2),
        ("workflows/2/states", 2),
        ("workflows/2/transitions", 2),
        ("workflows/3/custom_fields", 3),
        ("workflows/states/201", 2),
        ("workflows/states/305", 3),
    ],
)
async def test_app_may_not_use_other_workflows(narrow: Api, path: str, workflow_id: int) -> None:
    status, body = await _narrow(narrow, path)
    assert (status, body) == (
        200,
        {"code": -1, "msg": f"app 'narrow' may not use workflow {workflow_id}", "data": {}},
    )
