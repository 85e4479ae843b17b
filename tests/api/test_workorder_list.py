"""GET /open-api/workorder/list and /template/list against the real store (SQLite and PostgreSQL):
the 17 fields, who sees what, paging, the time window and the title search; the templates."""

from __future__ import annotations

from typing import Any

from api.workorder.codes import OrderStatus
from api.workorder.components import component_id
from core.commands import Create
from tests.api.workorder_harness import ACCESS, CUSTOMER, TEMPLATE, OpenApi, components, wo

__all__ = ["wo"]  # the fixture

ROW_KEYS = {
    "id",
    "order_no",
    "template_id",
    "template_title",
    "flow_handler",
    "template_step",
    "title",
    "relation_type",
    "relation_id",
    "status",
    "handler_id",
    "last_handler_id",
    "creator_id",
    "created_at",
    "updated_at",
    "total_time",
    "content",
}
ROW_TYPES = {
    "id": int,
    "order_no": str,
    "template_id": int,
    "template_title": str,
    "flow_handler": int,
    "template_step": int,
    "title": str,
    "relation_type": int,
    "relation_id": str,
    "status": int,
    "handler_id": str,
    "last_handler_id": str,
    "creator_id": str,
    "created_at": int,
    "updated_at": int,
    "total_time": int,
    "content": dict,
}


async def orders(wo: OpenApi, username: str = "admin", **params: str) -> tuple[int, list[dict[str, Any]]]:
    body = await wo.ok("GET", "list", username=username, params=params)
    assert set(body) == {"errcode", "errmsg", "total", "workorder_list"}
    return body["total"], body["workorder_list"]


async def five(wo: OpenApi) -> list[str]:
    """Five orders of liuyang's, an hour apart, titled 工单0 .. 工单4 (oldest first)."""
    numbers = []
    for i in range(5):
        numbers.append(await wo.create(title=f"工单{i}"))
        wo.clock.advance(hours=1)
    return numbers


async def test_rows_have_the_17_fields_with_their_types(wo: OpenApi) -> None:
    number = await wo.create(
        title="登录问题", relation_type=1, relation_id=CUSTOMER.external_userid, content={"text": "急"}
    )
    wo.clock.advance(minutes=30)
    total, rows = await orders(wo, "liuyang")
    assert total == 1
    (row,) = rows
    assert set(row) == ROW_KEYS
    assert {k: type(v) for k, v in row.items()} == ROW_TYPES
    assert row["order_no"] == number
    assert (row["template_id"], row["template_title"], row["title"]) == (TEMPLATE, "客服工单", "登录问题")
    assert (row["relation_type"], row["relation_id"]) == (1, CUSTOMER.external_userid)
    assert (row["status"], row["template_step"], row["flow_handler"]) == (OrderStatus.TO_ACCEPT, 1, 1)
    assert (row["creator_id"], row["handler_id"], row["last_handler_id"]) == (
        "LiuYang",
        "HePing,WuJuan,XuLi",
        "",
    )
    assert (row["total_time"], row["content"]) == (1800, {"pic": [], "text": "急"})
    assert row["updated_at"] == row["created_at"]


async def test_only_orders_the_caller_may_see_are_listed(wo: OpenApi) -> None:
    mine = await wo.create(title="mine")
    theirs = await wo.create("wangqiang", title="theirs")
    leave = Create(
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
    assert await wo.ctx.api.service.create(leave)  # not a work order: never listed
    assert [r["order_no"] for r in (await orders(wo, "liuyang"))[1]] == [mine]
    assert [r["order_no"] for r in (await orders(wo, "wangqiang"))[1]] == [theirs]
    assert await orders(wo, "zhaolei") == (0, [])  # a stranger
    assert {r["order_no"] for r in (await orders(wo, "lina"))[1]} == {mine, theirs}  # the template's viewer
    assert (await orders(wo, "admin"))[0] == 2
    await wo.ok("POST", "cc", username="liuyang", json={"order_no": mine, "cc_list": ["ZhaoLei"]})
    assert [r["order_no"] for r in (await orders(wo, "zhaolei"))[1]] == [mine]  # copied: sees it


async def test_paging_newest_first(wo: OpenApi) -> None:
    numbers = await five(wo)
    newest_first = list(reversed(numbers))
    total, rows = await orders(wo, "liuyang")
    assert (total, [r["order_no"] for r in rows]) == (5, newest_first)  # default limit 30
    for limit, offset in ((2, 0), (2, 1), (3, 2), (2, 4), (4, 3), (1, 5)):
        total, rows = await orders(wo, "liuyang", limit=str(limit), offset=str(offset))
        assert total == 5
        assert [r["order_no"] for r in rows] == newest_first[offset : offset + limit], (limit, offset)
    total, rows = await orders(wo, "liuyang", limit="1000")  # more than 100 is served as 100
    assert len(rows) == 5


async def test_time_window_filters_only_with_both_ends(wo: OpenApi) -> None:
    numbers = await five(wo)
    created = {r["order_no"]: r["created_at"] for r in (await orders(wo, "liuyang"))[1]}
    start, end = created[numbers[1]], created[numbers[3]]
    total, rows = await orders(wo, "liuyang", start_time=str(start), end_time=str(end))
    assert (total, [r["order_no"] for r in rows]) == (3, [numbers[3], numbers[2], numbers[1]])
    assert (await orders(wo, "liuyang", start_time=str(start)))[0] == 5  # one end alone: no filter
    assert (await orders(wo, "liuyang", end_time=str(end)))[0] == 5
    assert (await orders(wo, "liuyang", start_time=str(end + 1), end_time=str(end + 10)))[0] == 0


async def test_title_search(wo: OpenApi) -> None:
    await five(wo)
    await wo.create(title="打印机坏了")
    total, rows = await orders(wo, "liuyang", title="打印机")
    assert (total, [r["title"] for r in rows]) == (1, ["打印机坏了"])
    assert (await orders(wo, "liuyang", title="工单"))[0] == 5


async def test_bad_list_parameters_are_refused(wo: OpenApi) -> None:
    for params, contains in (
        ({"limit": "0"}, "'limit' must be at least 1"),
        ({"limit": "x"}, "'limit' must be an integer"),
        ({"offset": "-1"}, "'offset' must be at least 0"),
        ({"start_time": "20", "end_time": "10"}, "is after"),
        ({"start_time": "1e9", "end_time": "2"}, "'start_time' must be an integer"),
        ({"title": "x" * 201}, "'title' is longer than 200"),
    ):
        await wo.refused("GET", "list", 40003, 400, params=params, contains=contains)


async def test_merged_lists_of_whole_and_own_templates_page_together(wo: OpenApi) -> None:
    # wujuan administers template 3 (sees it whole) and sees template 2 only through her own orders
    first = await wo.create(title="cs-1")
    wo.clock.advance(minutes=1)
    access = components(system=["GitLab"], access_level=["只读"], reason="查代码")
    own = await wo.create("wujuan", template_id=ACCESS, component_list=access, title="access")
    wo.clock.advance(minutes=1)
    await wo.create("wangqiang", template_id=ACCESS, component_list=access, title="not hers")
    wo.clock.advance(minutes=1)
    last = await wo.create(title="cs-2")
    total, rows = await orders(wo, "wujuan")
    assert (total, [r["order_no"] for r in rows]) == (3, [last, own, first])
    total, rows = await orders(wo, "wujuan", limit="1", offset="1")
    assert (total, [r["order_no"] for r in rows]) == (3, [own])
    await wo.refused("GET", "list", 40003, 400, username="wujuan", params={"offset": "9999", "limit": "100"})


# --- templates -------------------------------------------------------------------------------------


async def test_template_list(wo: OpenApi) -> None:
    await wo.create()
    await wo.create()
    body = await wo.ok("GET", "template/list", username="liuyang")
    assert body["total"] == 2
    templates = {t["id"]: t for t in body["template_list"]}
    cs = templates[TEMPLATE]
    assert (cs["title"], cs["template_type"], cs["template_type_name"], cs["status"], cs["count"]) == (
        "客服工单",
        1,
        "常规流程",
        1,
        2,
    )
    assert [(s["step"], s["stage_name"], s["state_id"]) for s in cs["template_stage"]] == [
        (1, "客服受理", 302),
        (2, "技术处理", 303),
        (3, "客服回访", 304),
        (4, "结束", 305),
    ]
    by_key = {c["key"]: c for c in cs["component_list"]}
    category = by_key["category"]
    assert (category["component_id"], category["component_type"], category["required"]) == (
        component_id(TEMPLATE, "category"),
        "select",
        True,
    )
    assert category["config"]["option_list"] == [
        {"option_name": name, "option_img_src": ""} for name in ("咨询", "投诉", "故障报修", "退款")
    ]
    assert set(category["config"]) >= {"option_list", "input_type", "enable_mark_tag", "placeholder"}
    assert by_key["customer_name"]["config"]["input_type"] == "text"
    assert by_key["priority"]["config"]["default_value"] == ["普通"]
    assert (by_key["resolution"]["required"], by_key["resolution"]["editable"]) == (False, False)
    assert templates[ACCESS]["template_type"] == 2 and templates[ACCESS]["count"] == 0


async def test_template_counts_only_the_orders_the_caller_may_see(wo: OpenApi) -> None:
    await wo.create()  # liuyang's, handled by 客服部
    counts = {}
    for who in ("liuyang", "zhaolei", "admin"):
        body = await wo.ok("GET", "template/list", username=who)
        listed = await wo.ok("GET", "list", username=who)
        counts[who] = ({t["id"]: t["count"] for t in body["template_list"]}[TEMPLATE], listed["total"])
    assert counts == {"liuyang": (1, 1), "zhaolei": (0, 0), "admin": (1, 1)}


async def test_nan_and_infinity_are_not_json(wo: OpenApi) -> None:
    for constant in ("NaN", "Infinity", "-Infinity"):
        raw = '{"template_id": 3, "component_list": [{"title": "问题描述", "value": ' + constant + "}]}"
        await wo.refused(
            "POST", "create", 40003, 400, data=raw.encode(), contains=f"{constant} is not a JSON number"
        )


async def test_template_list_by_type(wo: OpenApi) -> None:
    regular = await wo.ok("GET", "template/list", params={"template_type": "1"})
    assert [t["id"] for t in regular["template_list"]] == [TEMPLATE]
    automated = await wo.ok("GET", "template/list", params={"template_type": "2"})
    assert [t["id"] for t in automated["template_list"]] == [ACCESS]
    await wo.refused("GET", "template/list", 40003, 400, params={"template_type": "3"}, contains="at most 2")
