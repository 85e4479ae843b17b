"""GET /open-api/workorder/detail against the real store (SQLite and PostgreSQL): every key of the
seed's example (seed 000) with the seed's types, the code tables, button_operate per viewer, and
every 22301 path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from api.workorder.codes import FLOW_NAMES, FlowType, OrderStatus
from api.workorder.components import component_id
from core.commands import Create, Delete
from core.order_no import order_no
from core.service import Done
from core.workorder import CUSTOMER as CUSTOMER_TYPE
from tests.api.workorder_harness import (
    CORP,
    CUSTOMER,
    SEED,
    SOLVE,
    TEMPLATE,
    VISITED,
    OpenApi,
    components,
    seed_example,
    wo,
)

__all__ = ["wo"]  # the fixture

ORDER_BASE = int(order_no(1)) - 1  # core.order_no: order_no = str(ORDER_BASE + ticket id)
SHARED_SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_a64975f882c24f82.txt"
ISO_CST = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00\Z")
FULL = components(
    customer_name="ACME",
    category=["故障报修"],
    priority=["高"],
    description="登录不了",
    attachments=["https://files.example/shot.png"],
)


def kind(value: Any) -> str:
    for name, types in (("null", type(None)), ("bool", bool), ("int", int), ("str", str), ("list", list)):
        if isinstance(value, types):
            return name
    return "dict" if isinstance(value, dict) else type(value).__name__


def assert_shape(example: Any, actual: Any, path: str = "$") -> None:
    """`actual` has every key of `example` with the same JSON type, recursively. null in the
    example allows any type; a list's items are compared with the example's first item. The
    component records' ``values`` are compared by component type (test_component_values_follow_the_seed)."""
    if example is None:
        return
    assert kind(actual) == kind(example), f"{path}: seed has {kind(example)}, got {kind(actual)}: {actual!r}"
    if isinstance(example, dict):
        assert set(actual) == set(example), f"{path}: keys differ: {set(actual) ^ set(example)}"
        for key, sub in example.items():
            if path.endswith("work_order_component_record_list[]") and key == "values":
                continue
            assert_shape(sub, actual[key], f"{path}.{key}")
    elif isinstance(example, list) and example:
        for item in actual:
            assert_shape(example[0], item, f"{path}[]")


async def full_order(wo: OpenApi) -> str:
    """An order with a customer, CC, chat records, a reply and a hand-over: every list filled."""
    await wo.keep("msg-1", "msg-2")
    number = await wo.create(
        relation_type=1,
        relation_id=CUSTOMER.external_userid,
        content={"text": "客户说登录不了", "pic": ["https://files.example/1.png"]},
        cc_list=["ZhangWei"],
        msg_list=["msg-1", "msg-2"],
        component_list=FULL,
        is_show=1,
    )
    wo.clock.advance(minutes=5)
    await wo.ok("POST", "accept", username="xuli", json={"order_no": number})
    wo.clock.advance(minutes=5)
    await wo.ok(
        "POST",
        "switch",
        username="xuli",
        json={
            "order_no": number,
            "handler_id": "HePing",
            "content": {"text": "请何平看看", "pic": []},
            "attached_json": [{"type": "video", "url": "https://files.example/v.mp4"}],
            "is_show": 1,
        },
    )
    wo.clock.advance(minutes=5)
    await wo.ok("POST", "reply", username="liuyang", json={"order_no": number, "content": {"text": "谢谢"}})
    return number


# --- the seed's example -------------------------------------------------------------------------------


def test_the_seed_copy_is_the_shared_seed() -> None:
    if SHARED_SEED.exists():  # the copy beside the tests is the seed itself
        assert SEED.read_text(encoding="utf-8") == SHARED_SEED.read_text(encoding="utf-8")
    example = seed_example()
    assert (example["errcode"], example["errmsg"]) == (0, "ok")
    assert len(example["work_order"]["processing_flows"][0]) == 21
    assert len(example["work_order"]["work_order_component_record_list"][0]) == 12


async def test_every_key_of_the_seed_with_its_type(wo: OpenApi) -> None:
    number = await full_order(wo)
    status, body = await wo.call("GET", "detail", username="liuyang", params={"order_no": number})
    assert status == 200
    assert_shape(seed_example(), body)
    order = body["work_order"]
    # the types the seed shows where it has null or an empty list, as documented
    flows = order["processing_flows"]
    assert all(kind(f["cc_list"]) in ("null", "list") for f in flows)
    assert all(kind(f["content"]["pic"]) in ("null", "list") for f in flows)
    assert [kind(m) for m in order["msg_list"]] == ["str", "str"]
    assert [kind(c) for c in order["cc_list"]] == ["str"]
    assert kind(order["deleted"]) == "int" and order["deleted"] == 0
    assert kind(order["corp_id"]) == "str" and order["corp_id"].isdigit()
    for record in order["work_order_component_record_list"]:
        assert record["corp_id"] == int(order["corp_id"])
        assert record["order_no"] == int(number)
        assert ISO_CST.match(record["created_at"]) and ISO_CST.match(record["updated_at"])


async def test_component_values_follow_the_seed(wo: OpenApi) -> None:
    number = await wo.create(component_list=FULL)
    records = {r["component_type"]: r for r in (await wo.detail(number))["work_order_component_record_list"]}
    seed = {r["component_type"]: r for r in seed_example()["work_order"]["work_order_component_record_list"]}
    for ctype, ours in records.items():
        theirs = seed.get(ctype)
        if theirs is not None and theirs["values"] is not None and ours["values"] is not None:
            assert kind(ours["values"]) == kind(theirs["values"]), ctype
    by_title = {r["title"]: r for r in records.values()} | {
        r["title"]: r for r in (await wo.detail(number))["work_order_component_record_list"]
    }
    assert (by_title["客户名称"]["value"], by_title["客户名称"]["values"]) == ("ACME", "")
    assert (by_title["问题分类"]["value"], by_title["问题分类"]["values"]) == ("", ["故障报修"])
    assert by_title["优先级"]["values"] == ["高"]
    assert by_title["附件"]["values"] == ["https://files.example/shot.png"]
    assert (by_title["处理结果"]["value"], by_title["处理结果"]["values"]) == ("", "")  # unset text
    assert by_title["客户满意度"]["values"] is None  # unset choice: null, as the seed's
    assert by_title["客户名称"]["component_id"] == component_id(TEMPLATE, "customer_name")
    assert [r["sort"] for r in (await wo.detail(number))["work_order_component_record_list"]] == list(
        range(1, 9)
    )


async def test_the_detail_says_what_happened(wo: OpenApi) -> None:
    number = await full_order(wo)
    order = await wo.detail(number, "liuyang")
    ticket_id = int(number) - ORDER_BASE
    assert (order["id"], order["order_no"], order["template_id"], order["template_title"]) == (
        ticket_id,
        order_no(ticket_id),
        TEMPLATE,
        "客服工单",
    )
    assert (order["creator_id"], order["creator_name"], order["creator_avatar"]) == ("LiuYang", "刘洋", "")
    assert (order["handler_id"], order["handler_name"]) == ("HePing", "何平")
    assert (order["last_handler_id"], order["last_handler_name"]) == ("XuLi", "徐丽")
    assert (order["status"], order["template_step"], order["stage_name"]) == (
        OrderStatus.PENDING,
        1,
        "客服受理",
    )
    assert (order["deliver"], order["reopen"], order["flow_handler"]) == (True, False, 1)
    assert order["relation_type"] == CUSTOMER_TYPE
    assert (
        order["relation_id"],
        order["relation_name"],
        order["relation_avatar"],
        order["relation_corp_name"],
    ) == (
        CUSTOMER.external_userid,
        CUSTOMER.name,
        CUSTOMER.avatar,
        CUSTOMER.corp_name,
    )
    assert order["msg_list"] == ["msg-1", "msg-2"]
    assert order["cc_list"] == ["ZhangWei"]
    assert order["content"] == {"pic": [], "text": "请何平看看"}  # the latest step's note, not the reply
    assert order["total_time"] == 15 * 60  # the fake clock moved 3 x 5 minutes
    assert order["created_at"] == int(wo.clock.now().timestamp()) - 15 * 60
    assert order["updated_at"] == int(wo.clock.now().timestamp())
    flows = order["processing_flows"]
    assert [f["type"] for f in flows] == [
        FlowType.PENDING,
        FlowType.REPLY,
        FlowType.DELIVER,
        FlowType.ACCEPT,
        FlowType.CREATE,
    ]
    assert all(f["type_name"] == FLOW_NAMES[FlowType(f["type"])] for f in flows)
    pending, replied, delivered, _accepted, created = flows
    assert (pending["id"], pending["content"]["text"], pending["to_id"], pending["handler_id"]) == (
        0,
        "待员工 何平 处理",
        "HePing",
        "HePing",
    )
    assert (replied["creator_id"], replied["content"], replied["is_show"]) == (
        "LiuYang",
        {"pic": None, "text": "谢谢"},
        0,
    )
    assert (delivered["creator_id"], delivered["to_id"], delivered["to_name"], delivered["is_show"]) == (
        "XuLi",
        "HePing",
        "何平",
        1,
    )
    assert delivered["attached_json"] == [{"type": "video", "url": "https://files.example/v.mp4"}]
    assert created["content"] == {"pic": ["https://files.example/1.png"], "text": "客户说登录不了"}
    assert (created["cc_list"], created["is_show"], created["to_id"]) == (["ZhangWei"], 1, "")
    assert all(f["id"] > 0 for f in flows[1:])
    assert [f["created_at"] for f in flows[1:]] == sorted((f["created_at"] for f in flows[1:]), reverse=True)


async def test_a_creation_without_a_note_says_who_created_it_for_whom(wo: OpenApi) -> None:
    number = await wo.create(relation_type=1, relation_id=CUSTOMER.external_userid)
    created = (await wo.detail(number))["processing_flows"][-1]
    assert created["content"] == {"pic": None, "text": "员工刘洋已为客户大大怪创建了工单"}
    plain = (await wo.detail(await wo.create()))["processing_flows"][-1]
    assert plain["content"]["text"] == "员工刘洋创建了工单"


async def test_a_finished_order_has_no_pending_flow_and_counts_its_time_to_the_end(wo: OpenApi) -> None:
    number = await wo.create()
    await wo.ok("POST", "accept", username="xuli", json={"order_no": number})
    await wo.ok("POST", "switch", username="xuli", json={"order_no": number, "transition_id": SOLVE})
    wo.clock.advance(hours=2)
    satisfied = components(satisfaction=["满意"])
    body = {"order_no": number, "transition_id": VISITED, "component_list": satisfied}
    await wo.ok("POST", "switch", username="liuyang", json=body)
    wo.clock.advance(hours=5)  # after the end: not counted
    order = await wo.detail(number, "liuyang")
    assert (order["status"], order["handler_id"], order["template_step"]) == (OrderStatus.FINISHED, "", 4)
    assert order["total_time"] == 2 * 3600
    assert order["processing_flows"][0]["type"] == FlowType.SWITCH
    assert order["last_handler_id"] == "LiuYang"


# --- button_operate per viewer ------------------------------------------------------------------------

NOTHING = dict.fromkeys(
    ("chat_record", "close", "comment", "deliver", "evaluate", "preview_flow", "reopen", "share", "update"),
    False,
)
SEES = {**NOTHING, "chat_record": True, "comment": True, "preview_flow": True, "share": True}


async def buttons(wo: OpenApi, number: str, username: str) -> dict[str, bool]:
    found: dict[str, bool] = (await wo.detail(number, username))["button_operate"]
    return found


async def test_buttons_of_an_open_order_per_viewer(wo: OpenApi) -> None:
    number = await wo.create()
    await wo.ok("POST", "accept", username="xuli", json={"order_no": number})
    assert await buttons(wo, number, "liuyang") == SEES  # the creator, once it left the first step
    assert await buttons(wo, number, "xuli") == {**SEES, "deliver": True, "update": True}  # the handler
    assert await buttons(wo, number, "lina") == SEES  # a viewer of the template
    admin = {**SEES, "deliver": True, "update": True, "close": True}  # super admin: intervenes
    assert await buttons(wo, number, "admin") == admin
    assert await buttons(wo, number, "wujuan") == admin  # an admin of the template
    await wo.refused("GET", "detail", 22301, 404, username="zhaolei", params={"order_no": number})  # stranger


async def test_buttons_of_an_ended_order_per_viewer(wo: OpenApi) -> None:
    number = await wo.create()
    await wo.ok("POST", "close", username="admin", json={"order_no": number})
    assert await buttons(wo, number, "liuyang") == {**SEES, "evaluate": True, "reopen": True}
    assert await buttons(wo, number, "admin") == {**SEES, "reopen": True}
    assert await buttons(wo, number, "lina") == SEES


async def test_each_button_is_a_request_the_api_accepts(wo: OpenApi) -> None:
    number = await wo.create()
    await wo.ok("POST", "accept", username="xuli", json={"order_no": number})
    assert (await buttons(wo, number, "liuyang"))["close"] is False
    await wo.refused("POST", "close", 48002, 403, username="liuyang", json={"order_no": number})
    assert (await buttons(wo, number, "liuyang"))["deliver"] is False
    body = {"order_no": number, "handler_id": "HePing"}
    await wo.refused("POST", "switch", 48002, 403, username="liuyang", json=body)
    assert (await buttons(wo, number, "xuli"))["deliver"] is True
    await wo.ok("POST", "switch", username="xuli", json=body)


# --- 22301 ---------------------------------------------------------------------------------------------


async def test_missing_malformed_and_unknown_order_numbers_are_22301(wo: OpenApi) -> None:
    await wo.create()
    for params in ({}, {"order_no": ""}, {"order_no": "abc"}, {"order_no": "1470000000000000001x"}):
        msg = await wo.refused("GET", "detail", 22301, 404, params=params)
        assert msg.startswith("order_no非法,对应工单不存在")
    for number in (str(ORDER_BASE + 999), str(ORDER_BASE), "1" * 19, "０" * 19, "147000000000000001"):
        await wo.refused("GET", "detail", 22301, 404, params={"order_no": number}, contains="order_no非法")


async def test_deleted_and_non_work_order_tickets_are_22301_even_for_admin(wo: OpenApi) -> None:
    number = await wo.create()
    ticket_id = int(number) - ORDER_BASE
    service = wo.ctx.api.service
    assert await service.execute(ticket_id, Delete("admin", "dup"))
    await wo.refused("GET", "detail", 22301, 404, params={"order_no": number})
    leave = await service.create(
        Create(
            "liuyang",
            1,
            151,
            {
                "leave_type": "annual",
                "start_date": "2026-02-02",
                "end_date": "2026-02-03",
                "days": 2,
                "reason": "x",
            },
        )
    )
    assert isinstance(leave, Done)
    await wo.refused("GET", "detail", 22301, 404, params={"order_no": order_no(leave.ticket.id)})


async def test_an_order_the_viewer_may_not_see_reads_like_an_unknown_one(wo: OpenApi) -> None:
    number = await wo.create()
    unknown = str(ORDER_BASE + 424242)
    hidden = await wo.refused("GET", "detail", 22301, 404, username="zhaolei", params={"order_no": number})
    missing = await wo.refused("GET", "detail", 22301, 404, username="zhaolei", params={"order_no": unknown})
    assert hidden.replace(number, "N") == missing.replace(unknown, "N")


async def test_an_app_without_the_template_sees_no_order(wo: OpenApi) -> None:
    from tests.api.conftest import loonflow_headers
    from tests.api.workorder_harness import LEAVE_ONLY, LEAVE_ONLY_TOKEN

    number = await wo.create()
    ts = int(wo.clock.now().timestamp())
    headers = loonflow_headers("admin", app=LEAVE_ONLY, token=LEAVE_ONLY_TOKEN, timestamp=ts)
    await wo.refused("GET", "detail", 22301, 404, headers=headers, params={"order_no": number})


async def test_corp_id_is_this_deployments_number(wo: OpenApi) -> None:
    from api.workorder.context import corp_number

    order = await wo.detail(await wo.create())
    assert order["corp_id"] == str(corp_number(CORP))
    assert corp_number("1653682321878942721") == 1653682321878942721
    assert corp_number("") == 0
    assert 0 < corp_number("ww1") < 2**62


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_real_app_serves_the_open_api_with_signed_page_links(api: Any) -> None:
    from tests.api.conftest import Api

    assert isinstance(api, Api)
    body: dict[str, Any] = {
        "template_id": TEMPLATE,
        "component_list": components(customer_name="A", category=["咨询"]),
    }
    body["component_list"] += components(priority=["低"], description="d")
    status, created = await api.call("POST", "/open-api/workorder/create", username="liuyang", json=body)
    assert (status, created["errcode"]) == (200, 0), created
    number = created["order_no"]
    status, shown = await api.call(
        "GET", "/open-api/workorder/detail", username="liuyang", params={"order_no": number}
    )
    assert (status, shown["work_order"]["order_no"]) == (200, number)
    status, shared = await api.call(
        "POST", "/open-api/workorder/share", username="liuyang", json={"order_no": number}
    )
    assert status == 200
    assert re.search(rf"/tickets/{created['id']}\?u=liuyang&e=\d+&s=[A-Za-z0-9_-]{{43}}$", shared["url"])
