"""The open API's writes against the real engine and store (SQLite and PostgreSQL): each endpoint's
success, and its refusals, each of which changes nothing (tickets, versions, flow logs, relations,
kept and linked chat records are compared before and after)."""

from __future__ import annotations

from typing import Any

import pytest

from api.workorder.codes import FlowType, OrderStatus
from tests.api.workorder_harness import (
    BASIC,
    CUSTOMER,
    SOLVE,
    TO_TECH,
    VISITED,
    OpenApi,
    components,
    wo,
)

__all__ = ["wo"]  # the fixture


async def unchanged(wo: OpenApi, path: str, errcode: int, status: int, contains: str = "", **kw: Any) -> str:
    """The request is refused as expected and nothing changed."""
    before = await wo.snapshot()
    msg = await wo.refused("POST", path, errcode, status, contains=contains, **kw)
    assert await wo.snapshot() == before, msg
    return msg


async def accepted(wo: OpenApi) -> str:
    """liuyang's order, accepted by xuli (客服部) at 客服受理."""
    number = await wo.create()
    await wo.ok("POST", "accept", username="xuli", json={"order_no": number})
    return number


async def finished(wo: OpenApi) -> str:
    number = await accepted(wo)
    await wo.ok("POST", "switch", username="xuli", json={"order_no": number, "transition_id": SOLVE})
    body = {"order_no": number, "transition_id": VISITED, "component_list": components(satisfaction=["满意"])}
    await wo.ok("POST", "switch", username="liuyang", json=body)
    return number


# --- create -------------------------------------------------------------------------------------------


async def test_create_with_a_customer_fills_the_customer_components(wo: OpenApi) -> None:
    parts = components(category=["投诉"], priority=["紧急"], description="退款慢")
    number = await wo.create(relation_type=1, relation_id=CUSTOMER.external_userid, component_list=parts)
    order = await wo.detail(number, "liuyang")
    values = {r["title"]: r["value"] for r in order["work_order_component_record_list"]}
    assert (values["客户名称"], values["客户 ID"]) == (CUSTOMER.name, CUSTOMER.external_userid)
    assert (order["relation_type"], order["relation_id"], order["title"]) == (
        1,
        CUSTOMER.external_userid,
        "大大怪：complaint",
    )


async def test_components_may_be_named_by_their_title(wo: OpenApi) -> None:
    parts = [
        {"title": "问题分类", "values": ["故障报修"]},
        {"title": "优先级", "values": ["高"]},
        {"title": "问题描述", "value": "路由器坏了"},
        {"title": "客户名称", "value": "大大怪"},
    ]
    number = await wo.create(component_list=parts)
    values = {r["title"]: r for r in (await wo.detail(number))["work_order_component_record_list"]}
    assert values["问题描述"]["value"] == "路由器坏了" and values["问题分类"]["values"] == ["故障报修"]
    await unchanged(
        wo,
        "create",
        40003,
        400,
        "no component titled '颜色'; name it by component_id, key or title",
        username="liuyang",
        json={"template_id": 3, "component_list": [*parts, {"title": "颜色", "value": "红"}]},
    )


async def test_create_with_a_request_id_is_idempotent(wo: OpenApi) -> None:
    """A client retrying a create (its answer was lost) gets the same order, related once."""
    body: dict[str, Any] = {
        "relation_type": 1,
        "relation_id": CUSTOMER.external_userid,
        "request_id": "crm-req-0001",
    }
    first = await wo.create(**body)
    before = await wo.snapshot()
    assert await wo.create(**body) == first
    assert await wo.snapshot() == before
    assert await wo.create(request_id="crm-req-0002") != first  # another request: another order
    await unchanged(
        wo,
        "create",
        40003,
        400,
        "'request_id'",
        username="liuyang",
        json={**body, "template_id": 3, "request_id": "x"},
    )
    assert (
        await wo.create(relation_type=1, relation_id=CUSTOMER.external_userid) != first
    )  # no key: a new one


async def test_create_may_name_components_by_id_and_choose_the_first_step(wo: OpenApi) -> None:
    from api.workorder.components import component_id

    parts = [
        {"component_id": component_id(3, "customer_name"), "value": "B"},
        {"component_id": component_id(3, "category"), "values": ["fault"]},  # an option's stored value
        {"component_id": component_id(3, "priority"), "value": "urgent"},
        {"component_id": component_id(3, "description"), "value": "宕机"},
    ]
    number = await wo.create(component_list=parts, transition_id=351)
    order = await wo.detail(number, "liuyang")
    assert (order["stage_name"], order["handler_id"]) == (
        "技术处理",
        "LiNa,LiuYang,WangQiang",
    )  # urgent fault


@pytest.mark.parametrize(
    ("body", "errcode", "status", "contains"),
    [
        ({"component_list": BASIC}, 41001, 400, "'template_id' is required"),
        (
            {"template_id": 1, "component_list": BASIC},
            22302,
            404,
            "template_id 1 names no work-order template",
        ),
        ({"template_id": 99, "component_list": BASIC}, 22302, 404, "template_id 99"),
        ({"template_id": "x"}, 40003, 400, "'template_id' must be an integer"),
        ({"template_id": 3, "component_list": BASIC, "relation_id": "wm-nobody"}, 22305, 404, "wm-nobody"),
        ({"template_id": 3, "component_list": BASIC, "relation_type": 1}, 41001, 400, "'relation_id'"),
        (
            {"template_id": 3, "component_list": BASIC, "relation_type": 2, "relation_id": "x"},
            40003,
            400,
            "relation_type 2 is not supported",
        ),
        ({"template_id": 3, "component_list": BASIC, "cc_list": ["Nobody"]}, 40003, 400, "'Nobody'"),
        ({"template_id": 3, "component_list": BASIC, "msg_list": ["m-unknown"]}, 22304, 404, "'m-unknown'"),
        ({"template_id": 3, "component_list": BASIC[:1]}, 40003, 400, "问题分类"),  # required, engine's words
        (
            {"template_id": 3, "component_list": components(customer_name="A", category=["无此项"])},
            40003,
            400,
            "has no option '无此项'",
        ),
        (
            {"template_id": 3, "component_list": [{"key": "nope", "value": "x"}]},
            40003,
            400,
            "no component 'nope'",
        ),
        (
            {"template_id": 3, "component_list": BASIC, "titel": "typo"},
            40003,
            400,
            "unknown parameter 'titel'",
        ),
        ({"template_id": 3, "component_list": BASIC, "transition_id": 352}, 40003, 400, "does not start"),
        ({"template_id": 3, "component_list": BASIC, "is_show": 2}, 40003, 400, "'is_show' must be 0 or 1"),
        (
            {"template_id": 3, "component_list": BASIC, "attached_json": [{"type": "pdf", "url": "u"}]},
            40003,
            400,
            "attached_json[0]",
        ),
        (
            {"template_id": 3, "component_list": BASIC, "content": {"text": 1}},
            40003,
            400,
            "'text' must be a string",
        ),
    ],
)
async def test_create_refusals_change_nothing(
    wo: OpenApi, body: dict[str, Any], errcode: int, status: int, contains: str
) -> None:
    await unchanged(wo, "create", errcode, status, contains, username="liuyang", json=body)


async def test_create_refuses_a_malformed_body(wo: OpenApi) -> None:
    await unchanged(wo, "create", 40003, 400, "malformed JSON", username="liuyang", data=b"{nope")
    await unchanged(wo, "create", 40003, 400, "must be an object", username="liuyang", json=[1])


# --- accept and switch ----------------------------------------------------------------------------------


async def test_accept(wo: OpenApi) -> None:
    number = await wo.create()
    await unchanged(
        wo, "accept", 48002, 403, "not a current handler", username="liuyang", json={"order_no": number}
    )
    await wo.ok("POST", "accept", username="xuli", json={"order_no": number})
    order = await wo.detail(number, "xuli")
    assert (order["status"], order["handler_id"]) == (OrderStatus.PENDING, "XuLi")
    assert order["processing_flows"][1]["type"] == FlowType.ACCEPT
    await unchanged(wo, "accept", 22303, 409, "needs no accept", username="xuli", json={"order_no": number})
    await unchanged(wo, "accept", 48002, 403, username="heping", json={"order_no": number})


async def test_switch_takes_a_transition_with_its_note_and_copies(wo: OpenApi) -> None:
    number = await accepted(wo)
    body = {
        "order_no": number,
        "transition_id": TO_TECH,
        "content": {"text": "转技术", "pic": ["https://p/1.png"]},
        "cc_list": ["SunHao", "zhoumin"],
        "is_show": 1,
        "attached_json": [{"type": "image", "url": "https://p/2.png"}],
        "component_list": components(priority=["高"]),
    }
    await wo.ok("POST", "switch", username="xuli", json=body)
    order = await wo.detail(number, "sunhao")  # copied: may see it
    assert (order["stage_name"], order["template_step"], order["status"]) == (
        "技术处理",
        2,
        OrderStatus.PENDING,
    )
    assert {"SunHao", "ZhouMin"} <= set(order["cc_list"])
    step = order["processing_flows"][1]
    assert (step["type"], step["type_name"], step["creator_id"], step["is_show"]) == (
        FlowType.SWITCH,
        "流转",
        "XuLi",
        1,
    )
    assert step["content"] == {"pic": ["https://p/1.png"], "text": "转技术"}
    assert step["cc_list"] == ["SunHao", "ZhouMin"]
    assert step["attached_json"] == [{"type": "image", "url": "https://p/2.png"}]
    assert order["content"] == {"pic": ["https://p/1.png"], "text": "转技术"}
    values = {r["title"]: r["values"] for r in order["work_order_component_record_list"]}
    assert values["优先级"] == ["高"]


@pytest.mark.parametrize(
    ("username", "body", "errcode", "status", "contains"),
    [
        ("xuli", {}, 41001, 400, "either 'transition_id'"),
        ("xuli", {"transition_id": SOLVE, "handler_id": "HePing"}, 40003, 400, "either 'transition_id'"),
        ("xuli", {"transition_id": 356}, 40003, 400, "transition 356 is not open now"),
        ("liuyang", {"transition_id": SOLVE}, 48002, 403, "not a current handler"),
        ("lina", {"handler_id": "HePing"}, 48002, 403, "not a current handler"),
        ("xuli", {"handler_id": "Nobody"}, 40003, 400, "no active staff member 'Nobody'"),
        ("xuli", {"handler_id": "XuLi"}, 40003, 400, "already handles"),
        ("xuli", {"transition_id": SOLVE, "cc_list": ["Nobody"]}, 40003, 400, "'Nobody'"),
        ("xuli", {"handler_id": "HePing", "component_list": []}, 40003, 400, "goes with 'transition_id'"),
        ("xuli", {"transition_id": SOLVE, "component_list": [{"key": "x"}]}, 40003, 400, "no component 'x'"),
        (
            "xuli",
            {"transition_id": SOLVE, "component_list": components(description="改")},
            40003,
            400,
            "read",
        ),
    ],
)
async def test_switch_refusals_change_nothing(
    wo: OpenApi, username: str, body: dict[str, Any], errcode: int, status: int, contains: str
) -> None:
    number = await accepted(wo)
    await unchanged(
        wo, "switch", errcode, status, contains, username=username, json={"order_no": number, **body}
    )


async def test_switch_before_accepting_and_after_the_end(wo: OpenApi) -> None:
    number = await wo.create()
    body = {"order_no": number, "transition_id": SOLVE}
    await unchanged(wo, "switch", 22303, 409, "accept", username="xuli", json=body)
    done = await finished(wo)
    await unchanged(wo, "switch", 22303, 409, "has ended", username="xuli", json={**body, "order_no": done})


async def test_an_admin_may_force_a_hand_over(wo: OpenApi) -> None:
    number = await accepted(wo)
    await wo.ok("POST", "switch", username="admin", json={"order_no": number, "handler_id": "heping"})
    order = await wo.detail(number, "heping")
    assert (order["handler_id"], order["deliver"], order["processing_flows"][1]["to_id"]) == (
        "HePing",
        True,
        "HePing",
    )


# --- reply, close, reopen, evaluate, cc ---------------------------------------------------------------


async def test_reply(wo: OpenApi) -> None:
    number = await accepted(wo)
    body = {"order_no": number, "content": {"text": "进展如何", "pic": ["https://p/3.png"]}, "is_show": 1}
    await wo.ok("POST", "reply", username="lina", json=body)  # a viewer of the template may reply
    flow = (await wo.detail(number))["processing_flows"][1]
    assert (flow["type"], flow["creator_id"], flow["content"], flow["is_show"]) == (
        FlowType.REPLY,
        "LiNa",
        {"pic": ["https://p/3.png"], "text": "进展如何"},
        1,
    )
    await unchanged(wo, "reply", 41001, 400, "'content.text'", username="lina", json={"order_no": number})
    await unchanged(wo, "reply", 22301, 404, username="zhaolei", json={**body})


async def test_close(wo: OpenApi) -> None:
    number = await accepted(wo)
    await unchanged(wo, "close", 48002, 403, "can close", username="liuyang", json={"order_no": number})
    await wo.ok(
        "POST", "close", username="wujuan", json={"order_no": number, "content": "重复", "cc_list": ["LiNa"]}
    )
    order = await wo.detail(number, "liuyang")
    assert (order["status"], order["handler_id"], order["content"]["text"]) == (
        OrderStatus.CLOSED,
        "",
        "重复",
    )
    assert order["processing_flows"][0]["type"] == FlowType.CLOSE
    await unchanged(wo, "close", 22303, 409, "has ended", username="wujuan", json={"order_no": number})


async def test_reopen(wo: OpenApi) -> None:
    number = await finished(wo)
    await unchanged(wo, "reopen", 48002, 403, "only the creator", username="lina", json={"order_no": number})
    await wo.ok(
        "POST", "reopen", username="liuyang", json={"order_no": number, "content": {"text": "又坏了"}}
    )
    order = await wo.detail(number, "liuyang")
    assert (order["reopen"], order["status"], order["stage_name"]) == (
        True,
        OrderStatus.TO_ACCEPT,
        "客服受理",
    )
    assert order["processing_flows"][1]["type"] == FlowType.REOPEN
    await unchanged(wo, "reopen", 22303, 409, "still open", username="liuyang", json={"order_no": number})


async def test_evaluate(wo: OpenApi) -> None:
    number = await finished(wo)
    await unchanged(
        wo,
        "evaluate",
        48002,
        403,
        "only the creator",
        username="admin",
        json={"order_no": number, "point": 5},
    )
    await unchanged(
        wo, "evaluate", 40003, 400, "at most 5", username="liuyang", json={"order_no": number, "point": 6}
    )
    await unchanged(wo, "evaluate", 41001, 400, "'point'", username="liuyang", json={"order_no": number})
    await wo.ok(
        "POST", "evaluate", username="liuyang", json={"order_no": number, "point": 4, "content": "不错"}
    )
    flow = (await wo.detail(number, "liuyang"))["processing_flows"][0]
    assert (flow["type"], flow["point"], flow["content"]["text"]) == (FlowType.EVALUATE, 4, "不错")
    open_one = await wo.create()
    await unchanged(
        wo, "evaluate", 22303, 409, "still open", username="liuyang", json={"order_no": open_one, "point": 3}
    )


async def test_cc(wo: OpenApi) -> None:
    number = await accepted(wo)
    await wo.refused("GET", "detail", 22301, 404, username="zhaolei", params={"order_no": number})
    await wo.ok(
        "POST", "cc", username="xuli", json={"order_no": number, "cc_list": ["ZhaoLei"], "content": "看看"}
    )
    order = await wo.detail(number, "zhaolei")
    flow = order["processing_flows"][1]
    assert (flow["type"], flow["cc_list"], flow["content"]["text"]) == (FlowType.CC, ["ZhaoLei"], "看看")
    assert order["content"]["text"] == ""  # a copy is not a step of the order: the accept's empty note
    body = {"order_no": number, "cc_list": ["ZhaoLei"]}
    await unchanged(wo, "cc", 40003, 400, "already copied", username="xuli", json=body)
    await unchanged(
        wo, "cc", 48002, 403, "can copy", username="zhaolei", json={**body, "cc_list": ["SunHao"]}
    )
    await unchanged(wo, "cc", 41001, 400, "'cc_list'", username="xuli", json={"order_no": number})


# --- share and chat records -----------------------------------------------------------------------------


async def test_share(wo: OpenApi) -> None:
    number = await accepted(wo)
    ticket_id = (await wo.detail(number))["id"]
    body = await wo.ok("POST", "share", username="liuyang", json={"order_no": number})
    assert (body["staff_id"], body["url"]) == (
        "LiuYang",
        f"https://tickets.example/tickets/{ticket_id}?u=liuyang&e=1&s=sig",
    )
    body = await wo.ok("POST", "share", username="xuli", json={"order_no": number, "staff_id": "XuLi"})
    assert (body["staff_id"], wo.shared[-1]) == ("XuLi", (ticket_id, "xuli"))
    # a link acts as the person it names: nobody gets one for somebody else (XuLi can see the order)
    await unchanged(
        wo,
        "share",
        48002,
        403,
        "only issued to them",
        username="liuyang",
        json={"order_no": number, "staff_id": "XuLi"},
    )
    await unchanged(
        wo, "share", 40003, 400, "'Ghost'", username="liuyang", json={"order_no": number, "staff_id": "Ghost"}
    )
    await unchanged(wo, "share", 22301, 404, username="zhaolei", json={"order_no": number})
    assert len(wo.shared) == 2


async def test_link_chat_records(wo: OpenApi) -> None:
    number = await accepted(wo)
    await wo.keep("kept-1")
    inline = {
        "msgid": "api-1",
        "from": "LiuYang",
        "to": CUSTOMER.external_userid,
        "msgtime": 1767603600,
        "text": "你好",
    }
    body = {"order_no": number, "msg_ids": ["kept-1"], "records": [inline]}
    answer = await wo.ok("POST", "msg/link", username="xuli", json=body)
    # a record given here is kept as "api:<msgid>" (it can't take an archive or chat record's id);
    # linked in one request: one time, so the store orders them by id
    assert (answer["linked"], answer["msg_list"]) == (["kept-1", "api:api-1"], ["api:api-1", "kept-1"])
    (record,) = await wo.ctx.chat_records.get(["api:api-1"])
    assert (record.source, record.to_ids, record.content) == (
        "api",
        (CUSTOMER.external_userid,),
        {"text": "你好"},
    )
    again = await wo.ok(
        "POST", "msg/link", username="xuli", json={"order_no": number, "msg_ids": ["api:api-1"]}
    )
    assert (again["linked"], again["msg_list"]) == ([], ["api:api-1", "kept-1"])
    await wo.keep("kept-0")
    wo.clock.advance(seconds=1)
    later = await wo.ok("POST", "msg/link", username="xuli", json={"order_no": number, "msg_ids": ["kept-0"]})
    assert later["msg_list"] == ["api:api-1", "kept-1", "kept-0"]  # in the order linked
    assert (await wo.detail(number))["msg_list"] == ["api:api-1", "kept-1", "kept-0"]


@pytest.mark.parametrize(
    ("body", "errcode", "status", "contains"),
    [
        ({"msg_ids": ["kept-1", "ghost-1"]}, 22304, 404, "'ghost-1'"),
        ({"msg_ids": ["ghost-2"], "records": [{"msgid": "new-1", "msgtime": 1}]}, 22304, 404, "'ghost-2'"),
        ({}, 41001, 400, "'msg_ids'"),
        ({"msg_ids": "kept-1"}, 40003, 400, "'msg_ids' must be a list"),
        ({"records": [{"msgid": "new-2"}]}, 41001, 400, "'records[0].msgtime'"),
        ({"records": [{"msgid": "   ", "msgtime": 1}]}, 41001, 400, "'records[0].msgid'"),
        ({"records": [{"msgid": "x" * 125, "msgtime": 1}]}, 40003, 400, "at most 124 characters"),
        ({"records": [{"msgid": "new-3", "msgtime": 1, "what": 1}]}, 40003, 400, "unknown key 'what'"),
        ({"records": [{"msgid": "new-4", "msgtime": "x"}]}, 40003, 400, "epoch seconds"),
    ],
)
async def test_link_refusals_change_nothing(
    wo: OpenApi, body: dict[str, Any], errcode: int, status: int, contains: str
) -> None:
    number = await accepted(wo)
    await wo.keep("kept-1")
    await unchanged(
        wo, "msg/link", errcode, status, contains, username="xuli", json={"order_no": number, **body}
    )


async def test_link_needs_an_order_the_caller_may_see(wo: OpenApi) -> None:
    number = await accepted(wo)
    await wo.keep("kept-1")
    await unchanged(
        wo, "msg/link", 22301, 404, username="zhaolei", json={"order_no": number, "msg_ids": ["kept-1"]}
    )


async def test_every_write_refuses_an_unknown_order(wo: OpenApi) -> None:
    await wo.keep("kept-1")
    unknown = {"order_no": "1470000000000009999"}
    for path, body in (
        ("switch", {"transition_id": SOLVE}),
        ("accept", {}),
        ("reply", {"content": "hi"}),
        ("close", {}),
        ("reopen", {}),
        ("evaluate", {"point": 5}),
        ("cc", {"cc_list": ["ZhaoLei"]}),
        ("share", {}),
        ("msg/link", {"msg_ids": ["kept-1"]}),
    ):
        await unchanged(wo, path, 22301, 404, "order_no非法,对应工单不存在", json={**unknown, **body})
