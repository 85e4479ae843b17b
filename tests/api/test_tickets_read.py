"""The loonflow read routes through the real app (signed calls, SQLite and PostgreSQL).

Tickets are created and moved with the fixture's own service, on the shipped demo config:
leave (workflow 1): 101 new -> 102 creator's leader -> (days > 3: 103 zhangwei) -> 104 HR role
(yangfan, chenjing; accept first) -> 105 end. liuyang's leader is wangqiang, zhoumin's is zhaolei.
chenjing is a leave admin, yangfan a leave viewer, admin a super admin; heping is nobody.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot.app import RUNTIME, create_app
from config.settings import load_settings
from core.commands import Accept, AddNode, Command, Comment, Create, Delete, Deliver, Handle
from core.service import Done
from store.tables import ticket as ticket_table
from tests.api.conftest import CONFIG, Api, loonflow_headers

LEAVE = 1
IT = 2
LEAVE_FIELDS: dict[str, Any] = {
    "leave_type": "annual",
    "start_date": "2026-01-05",
    "end_date": "2026-01-06",
    "days": 2,
    "reason": "rest",
}
IT_FIELDS: dict[str, Any] = {"system": "gitlab", "access_level": "read", "reason": "code review"}


async def create(api: Api, actor: str = "liuyang", workflow: int = LEAVE, **kw: Any) -> int:
    fields = dict(LEAVE_FIELDS if workflow == LEAVE else IT_FIELDS)
    fields.update(kw.pop("fields", {}))
    transition = 151 if workflow == LEAVE else 251
    result = await api.runtime.service.create(Create(actor, workflow, transition, fields=fields, **kw))
    assert isinstance(result, Done), result
    return result.ticket.id


async def run(api: Api, ticket_id: int, cmd: Command) -> None:
    result = await api.runtime.service.execute(ticket_id, cmd)
    assert isinstance(result, Done), result


async def created_at(api: Api, ticket_id: int, when: datetime) -> None:
    async with api.runtime.db.write() as conn:
        await conn.execute(update(ticket_table).where(ticket_table.c.id == ticket_id).values(created_at=when))


async def data(api: Api, path: str, username: str = "admin", **params: str) -> Any:
    status, body = await api.call("GET", path, username=username, params=params or None)
    assert status == 200, body
    assert body["code"] == 0 and body["msg"] == "", body
    return body["data"]


async def refusal(api: Api, path: str, username: str = "admin", **params: str) -> str:
    status, body = await api.call("GET", path, username=username, params=params or None)
    assert status == 200, body  # loonflow answers HTTP 200 with code -1 (strict statuses are off)
    assert body["code"] == -1 and body["data"] == {}, body
    assert isinstance(body["msg"], str) and body["msg"]
    return str(body["msg"])


async def ids(api: Api, username: str = "admin", **params: str) -> list[int]:
    got = await data(api, "tickets", username, **params)
    return [item["id"] for item in got["value"]]


def now() -> datetime:
    return datetime.now(UTC)


# --- GET /tickets ----------------------------------------------------------------------------------


async def test_list_item_shape(api: Api) -> None:
    tid = await create(api)
    got = await data(api, "tickets", "liuyang", category="owner")
    assert (got["total"], got["page"], got["per_page"]) == (1, 1, 10)
    [item] = got["value"]
    assert item["id"] == tid
    assert item["sn"].startswith("loonflow_") and len(item["sn"]) == len("loonflow_202601050001")
    assert item["title"] == "刘洋 请假 2 天"
    assert item["creator"] == "liuyang"
    assert item["state"] == {"state_name": "部门领导审批", "state_id": 102}
    assert item["workflow"] == {"workflow_name": "请假申请", "workflow_id": 1}
    assert item["participant_info"] == {
        "participant_type_id": 1,
        "participant": "wangqiang",
        "participant_name": "wangqiang",
        "participant_type_name": "个人",
        "participant_alias": "王强",
    }
    assert (item["parent_ticket_id"], item["parent_ticket_state_id"], item["act_state_id"]) == (0, 0, 1)
    for key in ("gmt_created", "gmt_modified"):
        stamp = datetime.strptime(item[key], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert abs(stamp - now()) < timedelta(minutes=5)  # UTC


async def test_list_categories(api: Api) -> None:
    waiting = await create(api)  # at 102, wangqiang
    approved = await create(api)
    await run(api, approved, Handle("wangqiang", 152))  # -> 104, HR (yangfan, chenjing)
    ops = await create(api, "zhoumin")  # at 102, zhaolei

    assert sorted(await ids(api, "liuyang", category="owner")) == [waiting, approved]
    assert await ids(api, "wangqiang", category="duty") == [waiting]
    assert await ids(api, "wangqiang", category="worked") == [approved]
    assert sorted(await ids(api, "wangqiang", category="relation")) == [waiting, approved]
    assert await ids(api, "yangfan", category="duty") == [approved]
    assert await ids(api, "liuyang", category="duty") == []
    assert await ids(api, "zhaolei", category="duty") == [ops]

    # all = what the user may see: everything for super admins, workflow admins and viewers ...
    everything = [ops, approved, waiting]
    assert await ids(api, "admin", category="all") == everything
    assert await ids(api, "chenjing", category="all") == everything
    assert await ids(api, "yangfan", category="all") == everything
    # ... and the related tickets for everyone else (the leave workflow checks view permission)
    assert await ids(api, "liuyang", category="all") == [approved, waiting]
    assert await ids(api, "zhaolei", category="all") == [ops]
    assert await ids(api, "heping", category="all") == []


async def test_list_all_merges_whole_and_related_workflows(api: Api) -> None:
    # lina administers IT access (sees it whole) but is an ordinary user of the leave workflow
    unrelated = await create(api, "liuyang")
    it_first = await create(api, "zhoumin", IT)
    own = await create(api, "lina")
    it_second = await create(api, "sunhao", IT)
    expected = [it_second, own, it_first]
    assert unrelated not in expected
    assert await ids(api, "lina", category="all") == expected
    assert await ids(api, "lina", category="all", reverse="0") == expected[::-1]
    pages = [await data(api, "tickets", "lina", category="all", per_page="2", page=str(p)) for p in (1, 2, 3)]
    assert [[i["id"] for i in p["value"]] for p in pages] == [expected[:2], expected[2:], []]
    assert {p["total"] for p in pages} == {3}
    assert await ids(api, "lina", category="all", workflow_ids="1") == [own]
    assert await ids(api, "lina", category="all", workflow_ids="2") == [it_second, it_first]
    msg = await refusal(api, "tickets", "lina", category="all", per_page="100", page="101")
    assert "first 10000 tickets" in msg


async def test_list_filters(api: Api) -> None:
    first = await create(api, title="紧急 年假申请")
    second = await create(api, fields={"days": 5})
    await run(api, second, Handle("wangqiang", 152))  # days > 3: 103 总经理审批
    child = await create(api, "wangqiang", parent_ticket_id=first, parent_ticket_state_id=102)
    it = await create(api, "liuyang", IT)
    sn = (await data(api, f"tickets/{first}", "liuyang"))["value"]["sn"]

    assert await ids(api, category="all", sn=sn) == [first]
    assert set(await ids(api, category="all", sn="loonflow_")) == {first, second, child, it}
    assert await ids(api, category="all", sn="nope_") == []
    assert await ids(api, category="all", title="紧急") == [first]
    assert await ids(api, category="all", title="年假申") == [first]
    assert await ids(api, category="all", workflow_ids="2") == [it]
    assert await ids(api, category="all", workflow_ids="1,2") == [it, child, second, first]
    assert await ids(api, category="all", workflow_ids="99") == []
    assert await ids(api, category="all", state_ids="103") == [second]
    assert await ids(api, category="all", state_ids="102,202") == [it, child, first]
    assert await ids(api, category="all", ticket_ids=f"{first},{it}") == [it, first]
    assert await ids(api, category="all", act_state_id="1") == [it, child, second, first]
    assert await ids(api, category="all", act_state_id="4") == []
    assert await ids(api, category="all", parent_ticket_id=str(first)) == [child]
    assert await ids(api, category="all", parent_ticket_state_id="102") == [child]
    assert await ids(api, category="all", parent_ticket_id="0") == [it, child, second, first]  # 0: no filter
    assert await ids(api, category="all", reverse="1") == [it, child, second, first]
    assert await ids(api, category="all", reverse="0") == [first, second, child, it]
    # filters combine with the category
    assert await ids(api, "liuyang", category="owner", workflow_ids="1") == [second, first]


async def test_list_creation_window(api: Api) -> None:
    recent = await create(api)
    old = await create(api)
    older = await create(api)
    await created_at(api, recent, now() - timedelta(days=364))
    await created_at(api, old, now() - timedelta(days=400))
    await created_at(api, older, now() - timedelta(days=366))

    # neither create_start nor create_end: only the last 365 days
    assert await ids(api, category="all") == [recent]
    # an explicit bound lifts the default window
    far = (now() - timedelta(days=800)).strftime("%Y-%m-%d")
    assert await ids(api, category="all", create_start=far) == [recent, older, old]
    tomorrow = (now() + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert await ids(api, category="all", create_end=tomorrow) == [recent, older, old]


async def test_list_create_start_and_end(api: Api) -> None:
    a, b, c = await create(api), await create(api), await create(api)
    await created_at(api, a, datetime(2025, 3, 1, 8, 0, tzinfo=UTC))
    await created_at(api, b, datetime(2025, 3, 2, 23, 59, 59, tzinfo=UTC))
    await created_at(api, c, datetime(2025, 3, 3, 0, 0, 1, tzinfo=UTC))
    assert await ids(api, category="all", create_start="2025-03-02", create_end="2025-03-02") == [b]
    assert await ids(api, category="all", create_start="2025-03-01 08:00:00", create_end="2025-03-02") == [
        b,
        a,
    ]
    assert await ids(api, category="all", create_start="2025-03-01 08:00:01") == [c, b]
    assert await ids(api, category="all", create_end="2025-03-01 08:00:00") == [a]
    assert await ids(api, category="all", create_start="2025-03-02 23:59") == [c, b]
    assert await ids(api, category="all", create_start="2025-03-02T23:59:59+00:00") == [c, b]
    assert await ids(api, category="all", create_start="2025-03-03 08:00:00+08:00") == [c]
    assert await ids(api, category="all", create_start="2025-03-04", create_end="2025-03-01") == []


async def test_list_pagination(api: Api) -> None:
    made = [await create(api) for _ in range(5)]
    newest_first = made[::-1]
    seen = []
    for page in (1, 2, 3):
        got = await data(api, "tickets", "liuyang", category="owner", per_page="2", page=str(page))
        assert (got["total"], got["page"], got["per_page"]) == (5, page, 2)
        seen.append([item["id"] for item in got["value"]])
    assert seen == [newest_first[:2], newest_first[2:4], newest_first[4:]]
    past = await data(api, "tickets", "liuyang", category="owner", per_page="2", page="4")
    assert past["value"] == [] and past["total"] == 5
    got = await data(api, "tickets", "liuyang", category="owner")
    assert (got["page"], got["per_page"], len(got["value"])) == (1, 10, 5)


async def test_list_per_page_is_capped(api: Api) -> None:
    for _ in range(3):
        await create(api)
    got = await data(api, "tickets", category="all", per_page="5000")
    assert got["per_page"] == 100
    assert len(got["value"]) == 3


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "'category' is required"),
        ({"category": "mine"}, "'category' must be one of all, owner, duty, relation, worked"),
        ({"category": "all", "page": "abc"}, "'page' must be an integer"),
        ({"category": "all", "page": "0"}, "'page' must be at least 1"),
        ({"category": "all", "page": "1.5"}, "'page' must be an integer"),
        ({"category": "all", "page": "99999999999999999999999"}, "'page' must be at most"),
        ({"category": "all", "per_page": "ten"}, "'per_page' must be an integer"),
        ({"category": "all", "per_page": "0"}, "'per_page' must be at least 1"),
        ({"category": "all", "reverse": "yes"}, '\'reverse\' must be "0" or "1"'),
        ({"category": "all", "act_state_id": "9"}, "'act_state_id' must be at most 5"),
        ({"category": "all", "act_state_id": "x"}, "'act_state_id' must be an integer"),
        ({"category": "all", "workflow_ids": "1,x"}, "'workflow_ids' must be an integer"),
        ({"category": "all", "state_ids": "-1"}, "'state_ids' must be at least 0"),
        ({"category": "all", "ticket_ids": "1;2"}, "'ticket_ids' must be an integer"),
        ({"category": "all", "workflow_ids": "99999999999"}, "'workflow_ids' must be at most"),
        ({"category": "all", "ticket_ids": ",".join(["1"] * 1001)}, "at most 1000"),
        ({"category": "all", "parent_ticket_id": "p"}, "'parent_ticket_id' must be an integer"),
        ({"category": "all", "parent_ticket_state_id": "-3"}, "'parent_ticket_state_id' must be at least 0"),
        ({"category": "all", "create_start": "yesterday"}, "'create_start' must look like"),
        ({"category": "all", "create_end": "2025-02-30"}, "'create_end' is not a valid date"),
        ({"category": "all", "create_end": "2025-13-01 10:00:00"}, "'create_end' must look like"),
        ({"category": "all", "create_end": "9999-12-31"}, "'create_end' is out of range"),
        ({"category": "all", "create_start": "0001-01-01T00:00:00+01:00"}, "'create_start' is out of range"),
    ],
)
async def test_list_malformed_params(api: Api, params: dict[str, str], fragment: str) -> None:
    msg = await refusal(api, "tickets", "liuyang", **params)
    assert fragment in msg


# --- GET /tickets/{id} -------------------------------------------------------------------------------


def by_key(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["field_key"]: f for f in detail["field_list"]}


async def test_detail(api: Api) -> None:
    tid = await create(api, fields={"proxy": "wangqiang"})
    value = (await data(api, f"tickets/{tid}", "liuyang"))["value"]
    assert value["id"] == tid and value["workflow_id"] == 1 and value["state_id"] == 102
    assert value["title"] == "刘洋 请假 2 天" and value["creator"] == "liuyang"
    assert value["relation"] == "liuyang,wangqiang"
    assert value["participant"] == "wangqiang" and value["participant_type_id"] == 1
    assert value["act_state_id"] == 1 and value["is_end"] is False and value["is_deleted"] is False
    assert value["in_add_node"] is False and value["add_node_man"] == ""
    assert value["multi_all_person"] == "{}"
    assert value["script_run_last_result"] is True
    assert (value["parent_ticket_id"], value["parent_ticket_state_id"]) == (0, 0)
    creator = value["creator_info"]
    assert (
        creator["username"],
        creator["alias"],
        creator["email"],
        creator["phone"],
        creator["is_active"],
    ) == (
        "liuyang",
        "刘洋",
        "liuyang@example.com",
        "13800000004",
        True,
    )
    dept = creator["dept_info"]
    assert (dept["id"], dept["name"], dept["leader"], dept["approver"], dept["parent_dept_id"]) == (
        2,
        "技术部",
        "lina",
        "wangqiang",
        1,
    )
    assert dept["parent_dept_info"] == {"parent_dept_name": "总部", "parent_dept_id": 1}
    assert dept["leader_info"] == {"leader_username": "lina", "leader_alias": "李娜"}
    assert dept["approver_info"] == [{"approver_name": "wangqiang", "approver_alias": "王强"}]
    state = value["state_info"]
    assert (state["id"], state["name"], state["workflow_id"], state["type_id"]) == (102, "部门领导审批", 1, 0)
    assert (state["participant_type_id"], state["participant"], state["distribute_type_id"]) == (
        5,
        "creator_tl",
        2,
    )
    assert state["enable_retreat"] is True and state["is_hidden"] is False
    assert state["state_field_str"] == {
        "leave_type": 1,
        "start_date": 1,
        "end_date": 1,
        "days": 1,
        "reason": 1,
    }

    fields = by_key(value)
    built_in = [
        "sn",
        "title",
        "state_id",
        "state.state_name",
        "participant_info.participant_name",
        "participant_info.participant_alias",
        "workflow.workflow_name",
        "creator",
        "gmt_created",
        "gmt_modified",
    ]
    custom = ["leave_type", "start_date", "end_date", "days", "reason", "proxy"]
    assert set(fields) == {*built_in, *custom}
    assert [f["order_id"] for f in value["field_list"]] == sorted(f["order_id"] for f in value["field_list"])
    assert fields["sn"]["field_value"] == value["sn"] and fields["sn"]["field_type_id"] == 5
    assert fields["state_id"]["field_value"] == 102 and fields["state_id"]["field_type_id"] == 10
    assert fields["state.state_name"]["field_value"] == "部门领导审批"
    assert fields["participant_info.participant_name"]["field_value"] == "wangqiang"
    assert fields["workflow.workflow_name"]["field_value"] == "请假申请"
    assert fields["creator"]["field_value"] == "liuyang"
    assert fields["gmt_created"]["field_value"] == value["gmt_created"]
    assert fields["days"]["field_value"] == 2 and fields["days"]["field_type_id"] == 10
    assert fields["days"]["default_value"] == 1
    assert fields["proxy"]["field_value"] == "wangqiang"
    assert fields["leave_type"]["field_choice"]["annual"] == "年假"
    assert fields["start_date"]["placeholder"] == "2024-05-01"
    assert all(f["field_attribute"] == 1 for f in value["field_list"])  # state 102 is read-only


async def test_detail_field_attributes_follow_the_viewer(api: Api) -> None:
    tid = await create(api)
    await run(api, tid, Handle("wangqiang", 153))  # 驳回: back to 101, the creator handles it
    mine = by_key((await data(api, f"tickets/{tid}", "liuyang"))["value"])
    assert {
        k: mine[k]["field_attribute"] for k in ("leave_type", "days", "reason", "proxy", "title", "sn")
    } == {
        "leave_type": 2,
        "days": 2,
        "reason": 2,
        "proxy": 3,
        "title": 3,
        "sn": 1,
    }
    # the admin and the former approver may look, but they do not handle it: all read-only
    for viewer in ("admin", "wangqiang"):
        theirs = (await data(api, f"tickets/{tid}", viewer))["value"]
        assert {f["field_attribute"] for f in theirs["field_list"]} == {1}


async def test_detail_all_must_process_votes(api: Api) -> None:
    tid = await create(api, "liuyang", IT, fields={"access_level": "admin"})
    await run(api, tid, Handle("wangqiang", 252))  # admin access: 203 countersign by lina and zhaolei
    await run(api, tid, Handle("lina", 254))
    value = (await data(api, f"tickets/{tid}", "liuyang"))["value"]
    assert json.loads(value["multi_all_person"]) == {
        "lina": {"transition_id": 254, "transition_name": "同意"},
        "zhaolei": {},
    }
    assert value["participant"] == "zhaolei"


async def test_detail_refusals(api: Api) -> None:
    tid = await create(api)
    assert await refusal(api, f"tickets/{tid}", "heping") == f"you have no permission to view ticket {tid}"
    assert await refusal(api, "tickets/999999") == "ticket 999999 does not exist"
    assert await refusal(api, "tickets/99999999999999999999") == "ticket 99999999999999999999 does not exist"
    assert await refusal(api, "tickets/" + "9" * 30) == "ticket 999999999999999999999... does not exist"
    await run(api, tid, Delete("chenjing"))
    assert await refusal(api, f"tickets/{tid}", "chenjing") == f"ticket {tid} does not exist"
    assert await ids(api, category="all") == []


@pytest.mark.parametrize("suffix", ["", "/transitions", "/flowlogs", "/flowsteps", "/participant_info"])
async def test_ticket_routes_check_view_permission_and_existence(api: Api, suffix: str) -> None:
    tid = await create(api)
    for outsider in ("heping", "zhaolei", "lina"):
        msg = await refusal(api, f"tickets/{tid}{suffix}", outsider)
        assert msg == f"you have no permission to view ticket {tid}"
    for insider in ("liuyang", "wangqiang", "yangfan", "chenjing", "admin"):
        await data(api, f"tickets/{tid}{suffix}", insider)
    assert await refusal(api, f"tickets/{tid + 1000}{suffix}") == f"ticket {tid + 1000} does not exist"
    assert await refusal(api, f"tickets/0{suffix}") == "ticket 0 does not exist"


# --- transitions ------------------------------------------------------------------------------------


async def test_transitions_forms(api: Api) -> None:
    tid = await create(api)
    normal = (await data(api, f"tickets/{tid}/transitions", "wangqiang"))["value"]
    assert [(t["transition_id"], t["transition_name"], t["attribute_type_id"]) for t in normal] == [
        (152, "同意", 1),
        (153, "驳回", 2),
    ]
    assert [t["field_require_check"] for t in normal] == [True, False]
    for t in normal:
        assert t["is_accept"] is False and t["in_add_node"] is False
        assert t["enable_alert"] is False and t["alert_text"] == ""
    # viewers who cannot act get an empty list
    for viewer in ("liuyang", "yangfan", "admin"):
        assert (await data(api, f"tickets/{tid}/transitions", viewer))["value"] == []

    await run(api, tid, AddNode("wangqiang", "lina", "请协助"))
    consulted = (await data(api, f"tickets/{tid}/transitions", "lina"))["value"]
    assert consulted == [
        {
            "transition_id": 0,
            "transition_name": "完成",
            "is_accept": False,
            "in_add_node": True,
            "field_require_check": False,
            "enable_alert": False,
            "alert_enable": False,
            "alert_text": "",
            "attribute_type_id": 3,
        }
    ]
    assert (await data(api, f"tickets/{tid}/transitions", "wangqiang"))["value"] == []

    other = await create(api)
    await run(api, other, Handle("wangqiang", 152))  # 104: HR, accept first
    for hr in ("yangfan", "chenjing"):
        [accept] = (await data(api, f"tickets/{other}/transitions", hr))["value"]
        assert (accept["transition_id"], accept["transition_name"]) == (0, "接单")
        assert (accept["is_accept"], accept["in_add_node"], accept["field_require_check"]) == (
            True,
            False,
            False,
        )
    await run(api, other, Accept("chenjing"))
    after = (await data(api, f"tickets/{other}/transitions", "chenjing"))["value"]
    assert [t["transition_id"] for t in after] == [156, 157]
    assert (await data(api, f"tickets/{other}/transitions", "yangfan"))["value"] == []


async def test_transitions_alert(api: Api) -> None:
    tid = await create(api, "liuyang", IT)
    await run(api, tid, Handle("wangqiang", 252))  # 204: ops on duty (sunhao, zhoumin), accept first
    await run(api, tid, Accept("sunhao"))
    value = (await data(api, f"tickets/{tid}/transitions", "sunhao"))["value"]
    back = next(t for t in value if t["transition_id"] == 257)
    assert back["enable_alert"] is True and back["alert_text"] == "确定退回给申请人补充信息吗？"


# --- flow logs and steps ----------------------------------------------------------------------------


async def test_flowlogs(api: Api) -> None:
    tid = await create(api, suggestion="请批准")
    await run(api, tid, Comment("liuyang", "补充: 周一回来"))
    await run(api, tid, Deliver("wangqiang", "lina", "请李娜处理"))
    await run(api, tid, AddNode("lina", "wangqiang", "请确认"))

    got = await data(api, f"tickets/{tid}/flowlogs", "liuyang")
    assert (got["total"], got["page"], got["per_page"]) == (4, 1, 10)
    names = [(e["transition"]["transition_name"], e["intervene_type_id"]) for e in got["value"]]
    assert names == [("加签操作", 2), ("转交操作", 1), ("新增评论", 5), ("提交", 0)]
    add_node, deliver, comment, submit = got["value"]
    assert submit["transition"] == {"transition_name": "提交", "transition_id": 151, "attribute_type_id": 1}
    assert deliver["transition"] == {
        "transition_name": "转交操作",
        "transition_id": 0,
        "attribute_type_id": 3,
    }
    assert submit["state"] == {"state_name": "发起人-新建中", "state_id": 101}
    assert deliver["state"] == {"state_name": "部门领导审批", "state_id": 102}
    assert submit["suggestion"] == "请批准" and comment["suggestion"] == "补充: 周一回来"
    assert deliver["participant"] == "wangqiang" and deliver["participant_type_id"] == 1
    assert deliver["participant_info"] == {
        "participant_email": "wangqiang@example.com",
        "participant_alias": "王强",
        "participant_phone": "13800000003",
        "participant": "wangqiang",
        "participant_type_id": 1,
    }
    assert all(e["ticket_id"] == tid and "ticket_data" not in e for e in got["value"])
    assert add_node["id"] > deliver["id"] > comment["id"] > submit["id"]

    oldest = await data(api, f"tickets/{tid}/flowlogs", "liuyang", desc="0", per_page="3")
    assert [e["id"] for e in oldest["value"]] == [submit["id"], comment["id"], deliver["id"]]
    rest = await data(api, f"tickets/{tid}/flowlogs", "liuyang", desc="0", per_page="3", page="2")
    assert [e["id"] for e in rest["value"]] == [add_node["id"]] and rest["total"] == 4

    full = await data(api, f"tickets/{tid}/flowlogs", "liuyang", ticket_data="1", desc="0")
    snapshot = full["value"][0]["ticket_data"]
    assert snapshot["days"] == 2 and snapshot["leave_type"] == "annual"
    assert snapshot["ticket_id"] == tid and snapshot["state_id"] == 101
    assert snapshot["title"] == "刘洋 请假 2 天" and snapshot["sn"].startswith("loonflow_")
    assert snapshot["gmt_created"] == full["value"][0]["gmt_created"][:19]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"ticket_data": "2"}, '\'ticket_data\' must be "0" or "1"'),
        ({"desc": "true"}, '\'desc\' must be "0" or "1"'),
        ({"page": "x"}, "'page' must be an integer"),
        ({"per_page": "-1"}, "'per_page' must be at least 1"),
    ],
)
async def test_flowlogs_malformed_params(api: Api, params: dict[str, str], fragment: str) -> None:
    tid = await create(api)
    assert fragment in await refusal(api, f"tickets/{tid}/flowlogs", "liuyang", **params)


async def test_flowlogs_per_page_is_capped(api: Api) -> None:
    tid = await create(api)
    got = await data(api, f"tickets/{tid}/flowlogs", "liuyang", per_page="101")
    assert got["per_page"] == 100 and got["total"] == 1


async def test_flowsteps(api: Api) -> None:
    tid = await create(api)
    await run(api, tid, Handle("wangqiang", 152, suggestion="同意"))
    await run(api, tid, Accept("yangfan"))
    got = await data(api, f"tickets/{tid}/flowsteps", "liuyang")
    assert got["current_state_id"] == 104
    steps = got["value"]
    assert [(s["state_id"], s["state_name"], s["order_id"]) for s in steps] == [
        (101, "发起人-新建中", 1),
        (102, "部门领导审批", 2),
        (103, "总经理审批", 3),
        (104, "人事备案", 4),
        (105, "结束", 5),
    ]
    logs = {s["state_id"]: s["state_flow_log_list"] for s in steps}
    assert [e["transition"]["transition_name"] for e in logs[101]] == ["提交"]
    assert [(e["transition"]["transition_id"], e["suggestion"]) for e in logs[102]] == [(152, "同意")]
    assert logs[103] == [] and logs[105] == []
    [accepted] = logs[104]
    assert accepted["transition"] == {
        "transition_name": "接单操作",
        "transition_id": 0,
        "attribute_type_id": 3,
    }
    assert (accepted["participant"], accepted["state_id"], accepted["intervene_type_id"]) == (
        "yangfan",
        104,
        4,
    )
    assert accepted["participant_info"]["participant_alias"] == "杨帆"


# --- participants and batch states -----------------------------------------------------------------


async def test_participant_info(api: Api) -> None:
    tid = await create(api)
    got = await data(api, f"tickets/{tid}/participant_info", "liuyang")
    assert got == {
        "participant_username_list": ["wangqiang"],
        "participant_info_list": [
            {
                "username": "wangqiang",
                "alias": "王强",
                "phone": "13800000003",
                "email": "wangqiang@example.com",
            }
        ],
    }
    await run(api, tid, Handle("wangqiang", 152))
    got = await data(api, f"tickets/{tid}/participant_info", "liuyang")
    assert sorted(got["participant_username_list"]) == ["chenjing", "yangfan"]
    assert sorted(p["alias"] for p in got["participant_info_list"]) == sorted(["陈静", "杨帆"])
    await run(api, tid, Accept("chenjing"))
    await run(api, tid, Handle("chenjing", 156))  # -> 105 end
    got = await data(api, f"tickets/{tid}/participant_info", "liuyang")
    assert got == {"participant_username_list": [], "participant_info_list": []}
    value = (await data(api, f"tickets/{tid}", "liuyang"))["value"]
    assert value["is_end"] is True and value["act_state_id"] == 4 and value["participant"] == ""


async def test_batch_states(api: Api) -> None:
    mine = await create(api)
    moved = await create(api)
    await run(api, moved, Handle("wangqiang", 152))
    other = await create(api, "zhoumin")
    query = f"{mine},{moved},{other},987654"
    got = await data(api, "tickets/states", "liuyang", ticket_ids=query)
    assert got == {
        str(mine): {"state_id": 102, "state_name": "部门领导审批"},
        str(moved): {"state_id": 104, "state_name": "人事备案"},
    }
    everything = await data(api, "tickets/states", "admin", ticket_ids=query)
    assert set(everything) == {str(mine), str(moved), str(other)}
    assert await data(api, "tickets/states", "heping", ticket_ids=query) == {}


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "'ticket_ids' is required"),
        ({"ticket_ids": " , "}, "'ticket_ids' is required"),
        ({"ticket_ids": "1,a"}, "'ticket_ids' must be an integer"),
        ({"ticket_ids": ",".join(str(i) for i in range(1, 102))}, "at most 100"),
    ],
)
async def test_batch_states_malformed(api: Api, params: dict[str, str], fragment: str) -> None:
    assert fragment in await refusal(api, "tickets/states", "liuyang", **params)


# --- an app limited to some workflows ---------------------------------------------------------------


@pytest.fixture
async def limited_api(aiohttp_client: Any, database_url: str, tmp_path: Path) -> Api:
    """The demo app plus `limited` (token limited-token), which may use workflow 2 only."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    with (config / "apps.yaml").open("a", encoding="utf-8") as f:
        f.write("\n  - name: limited\n    token: limited-token\n    workflows: [2]\n")
    settings = load_settings(env={}, database_url=database_url, config_dir=config)
    app = await create_app(settings)
    return Api(await aiohttp_client(app), app[RUNTIME])


async def test_app_limited_to_some_workflows(limited_api: Api) -> None:
    api = limited_api
    leave = await create(api)
    it = await create(api, "liuyang", IT)
    hdrs = loonflow_headers("admin", app="limited", token="limited-token")

    async def call(path: str, **params: str) -> Any:
        status, body = await api.call("GET", path, headers=hdrs, params=params or None)
        assert status == 200
        return body

    body = await call("tickets", category="all")
    assert [i["id"] for i in body["data"]["value"]] == [it]
    body = await call("tickets", category="all", workflow_ids="1")
    assert body["data"]["value"] == [] and body["data"]["total"] == 0
    body = await call(f"tickets/{leave}")
    assert body["code"] == -1 and body["msg"] == "app 'limited' may not use workflow 1"
    for suffix in ("/transitions", "/flowlogs", "/flowsteps", "/participant_info"):
        body = await call(f"tickets/{leave}{suffix}")
        assert body["code"] == -1 and "may not use workflow 1" in body["msg"]
    body = await call(f"tickets/{it}")
    assert body["code"] == 0
    body = await call("tickets/states", ticket_ids=f"{leave},{it}")
    assert set(body["data"]) == {str(it)}
    # the demo app still sees both
    assert await ids(api, category="all") == [it, leave]


@pytest.mark.parametrize(
    "params", [{"title": "a\x00b"}, {"sn": "a\x00b"}, {"sn": "\ud7ff"}, {"title": "x" * 201}]
)
async def test_list_text_filters_refuse_what_the_database_cannot_take(
    api: Api, params: dict[str, str]
) -> None:
    status, body = await api.call("GET", "tickets", params={"category": "all", **params})
    assert status == 200
    assert body["code"] == -1 or params == {"sn": "\ud7ff"}, body
    assert "internal error" not in body["msg"]
