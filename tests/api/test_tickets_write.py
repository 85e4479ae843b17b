"""The loonflow v1.0 ticket write routes end to end: signed HTTP calls against the real app (shipped
demo config) on SQLite and PostgreSQL, effects read back from the store.

Demo cast (config/org.yaml): liuyang (技术部) creates; his team leader is wangqiang (the 技术部
approver); HR (role 1: yangfan, chenjing) files leave; ops on duty (role 2: sunhao, zhoumin) handle
IT access; admin is the super admin.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import RUNTIME, create_app
from config.settings import load_settings
from core.ticket import ActState, FlowLog, InterveneType, Ticket
from core.workflow import ParticipantType
from store.queries import flow_logs, get_ticket, list_tickets
from tests.api.conftest import CONFIG, Api

LEAVE = 1
IT_ACCESS = 2
CS_WORKORDER = 3
LEAVE_FIELDS: dict[str, Any] = {
    "leave_type": "annual",
    "start_date": "2024-05-01",
    "end_date": "2024-05-02",
    "days": 2,
    "reason": "family matters",
}
CS_FIELDS: dict[str, Any] = {
    "customer_name": "ACME",
    "category": "consult",
    "priority": "normal",
    "description": "how do I reset my password?",
}
IT_FIELDS: dict[str, Any] = {"system": "gitlab", "access_level": "read", "reason": "code review"}
RETRY_MSG = "Ticket script or hook retry start successful"


# ---------------------------------------------------------------------------------------- helpers


async def succeed(
    api: Api, method: str, path: str, username: str, json: Any = None, *, data: Any = None
) -> dict[str, Any]:
    """Call and insist on loonflow success: HTTP 200, code 0, data as given (default {})."""
    status, body = await api.call(method, path, username=username, json=json)
    assert status == 200, body
    assert body["code"] == 0, body
    assert body["data"] == ({} if data is None else data), body
    return dict(body)


async def create(api: Api, who: str, workflow_id: Any, transition_id: Any, **params: Any) -> int:
    status, body = await api.call(
        "POST",
        "tickets",
        username=who,
        json={"workflow_id": workflow_id, "transition_id": transition_id, **params},
    )
    assert status == 200, body
    assert body["code"] == 0, body
    assert set(body["data"]) == {"ticket_id"}, body
    ticket_id = body["data"]["ticket_id"]
    assert isinstance(ticket_id, int)
    return ticket_id


async def create_leave(api: Api, username: str = "liuyang", **params: Any) -> int:
    """A leave request submitted by `username`: it waits in 102 for the team leader."""
    return await create(api, username, LEAVE, 151, **{**LEAVE_FIELDS, **params})


async def ticket(api: Api, ticket_id: int) -> Ticket:
    found = await get_ticket(api.runtime.db, ticket_id)
    assert found is not None
    return found


async def logs(api: Api, ticket_id: int) -> list[FlowLog]:
    """The flow log, oldest first."""
    return await flow_logs(api.runtime.db, ticket_id, desc=False)


async def ticket_count(api: Api) -> int:
    return (await list_tickets(api.runtime.db, username="admin", category="all"))[1]


async def custom_api(aiohttp_client: Any, database_url: str, tmp_path: Path, *, strict: bool = False) -> Api:
    """The real app on a copy of the shipped config whose apps are `demo` (SN prefix `demoapp`)
    and `narrow` (token `narrow-token`, only workflow 3)."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (config / "apps.yaml").write_text(
        "apps:\n"
        "  - {name: demo, token: demo-token, workflows: all, sn_prefix: demoapp}\n"
        "  - {name: narrow, token: narrow-token, workflows: [3]}\n",
        encoding="utf-8",
    )
    settings = load_settings(env={}, database_url=database_url, config_dir=config, api_strict_status=strict)
    app = await create_app(settings)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    return Api(client, app[RUNTIME])


# ------------------------------------------------------------------------------------------ create


async def test_create_answers_the_ticket_id_and_submits_it(api: Api) -> None:
    ticket_id = await create_leave(api, suggestion="please approve")
    t = await ticket(api, ticket_id)
    assert t.creator == "liuyang"
    assert t.workflow_id == LEAVE
    assert t.state_id == 102
    assert t.act_state == ActState.ONGOING
    assert t.participants == ("wangqiang",)
    assert t.fields["days"] == 2
    assert t.sn.startswith("loonflow_")  # the demo app's prefix
    assert t.title == "刘洋 请假 2 天"  # the workflow's title template
    [log] = await logs(api, ticket_id)
    assert (log.actor, log.transition_id, log.suggestion) == ("liuyang", 151, "please approve")


async def test_create_takes_a_title_and_string_numbers(api: Api) -> None:
    ticket_id = await create(
        api, "liuyang", "1", "151", **{**LEAVE_FIELDS, "days": "5"}, title="Honeymoon", username="ignored"
    )
    t = await ticket(api, ticket_id)
    assert t.title == "Honeymoon"
    assert t.fields["days"] == 5
    await succeed(api, "PATCH", f"tickets/{ticket_id}", "wangqiang", {"transition_id": "152"})
    t = await ticket(api, ticket_id)
    assert (t.state_id, t.participants) == (103, ("zhangwei",))  # > 3 days: the general manager


async def test_create_uses_the_app_sn_prefix(aiohttp_client: Any, database_url: str, tmp_path: Path) -> None:
    api = await custom_api(aiohttp_client, database_url, tmp_path)
    ticket_id = await create_leave(api)
    assert (await ticket(api, ticket_id)).sn.startswith("demoapp_")


async def test_create_follows_the_condition_of_the_customer_service_workflow(api: Api) -> None:
    fields = {"customer_name": "ACME", "category": "fault", "priority": "urgent", "description": "down"}
    urgent = await create(api, "xuli", CS_WORKORDER, 351, **fields)
    assert (await ticket(api, urgent)).state_id == 303  # straight to engineering
    normal = await create(api, "xuli", CS_WORKORDER, 351, **{**fields, "priority": "normal"})
    assert (await ticket(api, normal)).state_id == 302


async def test_sub_ticket_ending_advances_its_parent(api: Api) -> None:
    # an urgent fault goes straight to 技术处理 (303), a state that waits for its sub-tickets
    parent = await create(
        api, "xuli", CS_WORKORDER, 351, **{**CS_FIELDS, "category": "fault", "priority": "urgent"}
    )
    assert (await ticket(api, parent)).state_id == 303
    # a tech handler (lina) opens a sub work order for customer service first
    child = await create(
        api, "lina", CS_WORKORDER, 351, **CS_FIELDS, parent_ticket_id=parent, parent_ticket_state_id="303"
    )
    c = await ticket(api, child)
    assert (c.parent_ticket_id, c.parent_ticket_state_id, c.state_id) == (parent, 303, 302)
    await succeed(api, "POST", f"tickets/{child}/accept", "xuli")
    await succeed(api, "PATCH", f"tickets/{child}", "xuli", {"transition_id": 352, "resolution": "done"})
    await succeed(
        api, "PATCH", f"tickets/{child}", "lina", {"transition_id": 356, "satisfaction": "satisfied"}
    )
    assert (await ticket(api, child)).act_state == ActState.FINISHED
    p = await ticket(api, parent)
    assert p.state_id == 304  # 处理完成 fired by itself
    assert (await logs(api, parent))[-1].actor == "system"


async def test_a_state_that_does_not_wait_for_sub_tickets_is_not_advanced(api: Api) -> None:
    parent = await create_leave(api)
    child = await create(
        api,
        "wangqiang",
        CS_WORKORDER,
        351,
        **CS_FIELDS,
        parent_ticket_id=parent,
        parent_ticket_state_id="102",
    )
    await succeed(api, "POST", f"tickets/{child}/close", "admin", {"suggestion": "not needed"})
    assert (await ticket(api, parent)).state_id == 102  # still waits for its leader's decision


# ------------------------------------------------------------------------------ handle to the end


async def test_leave_request_from_create_to_end(api: Api) -> None:
    ticket_id = await create_leave(api)
    # the leader approves; echoing a read-only value unchanged is fine
    await succeed(
        api,
        "PATCH",
        f"tickets/{ticket_id}",
        "wangqiang",
        {"transition_id": 152, "days": 2, "suggestion": "ok"},
    )
    t = await ticket(api, ticket_id)
    assert t.state_id == 104
    assert set(t.participants) == {"yangfan", "chenjing"}  # accept first
    await succeed(api, "POST", f"tickets/{ticket_id}/accept", "yangfan")
    t = await ticket(api, ticket_id)
    assert (t.accepted_by, t.participants) == ("yangfan", ("yangfan",))
    await succeed(
        api, "PATCH", f"tickets/{ticket_id}", "yangfan", {"transition_id": 156, "suggestion": "filed"}
    )
    t = await ticket(api, ticket_id)
    assert t.state_id == 105
    assert t.act_state == ActState.FINISHED
    history = [
        (log.actor, log.intervene_type, log.transition_id, log.suggestion)
        for log in await logs(api, ticket_id)
    ]
    assert history == [
        ("liuyang", InterveneType.TRANSITION, 151, ""),
        ("wangqiang", InterveneType.TRANSITION, 152, "ok"),
        ("yangfan", InterveneType.ACCEPT, 0, ""),
        ("yangfan", InterveneType.TRANSITION, 156, "filed"),
    ]
    # the same history through the read side of the API, newest first
    status, body = await api.call("GET", f"tickets/{ticket_id}/flowlogs", username="liuyang")
    assert (status, body["code"], body["data"]["total"]) == (200, 0, 4), body
    assert [entry["transition"]["transition_id"] for entry in body["data"]["value"]] == [156, 0, 152, 151]


async def test_reject_returns_the_ticket_to_its_creator(api: Api) -> None:
    ticket_id = await create_leave(api)
    await succeed(
        api, "PATCH", f"tickets/{ticket_id}", "wangqiang", {"transition_id": 153, "suggestion": "no"}
    )
    t = await ticket(api, ticket_id)
    assert (t.state_id, t.act_state, t.participants) == (101, ActState.REJECTED, ("liuyang",))
    await succeed(api, "PATCH", f"tickets/{ticket_id}", "liuyang", {"transition_id": 151, "reason": "really"})
    t = await ticket(api, ticket_id)
    assert (t.state_id, t.fields["reason"]) == (102, "really")


# ------------------------------------------------------------------------------------ interventions


async def test_deliver_hands_the_ticket_over(api: Api) -> None:
    ticket_id = await create_leave(api)
    await succeed(
        api,
        "POST",
        f"tickets/{ticket_id}/deliver",
        "wangqiang",
        {"target_username": "lina", "suggestion": "you decide"},
        data=True,
    )
    assert (await ticket(api, ticket_id)).participants == ("lina",)
    last = (await logs(api, ticket_id))[-1]
    assert (last.actor, last.intervene_type, last.suggestion) == (
        "wangqiang",
        InterveneType.DELIVER,
        "you decide",
    )
    await succeed(api, "PATCH", f"tickets/{ticket_id}", "lina", {"transition_id": 152})
    assert (await ticket(api, ticket_id)).state_id == 104


async def test_admin_forces_a_deliver(api: Api) -> None:
    ticket_id = await create_leave(api)
    for from_admin, target in (("1", "lina"), (True, "wangqiang"), ("true", "zhangwei")):
        await succeed(
            api,
            "POST",
            f"tickets/{ticket_id}/deliver",
            "admin",
            {"target_username": target, "from_admin": from_admin},
            data=True,
        )
        assert (await ticket(api, ticket_id)).participants == (target,)


async def test_add_node_and_add_node_end(api: Api) -> None:
    ticket_id = await create_leave(api)
    await succeed(
        api,
        "POST",
        f"tickets/{ticket_id}/add_node",
        "wangqiang",
        {"target_username": "lina", "suggestion": "ok?"},
    )
    t = await ticket(api, ticket_id)
    assert (t.in_add_node, t.add_node_man, t.add_node_target) == (True, "wangqiang", "lina")
    await succeed(api, "POST", f"tickets/{ticket_id}/add_node_end", "lina", {"suggestion": "fine by me"})
    t = await ticket(api, ticket_id)
    assert (t.in_add_node, t.participants) == (False, ("wangqiang",))
    await succeed(api, "PATCH", f"tickets/{ticket_id}", "wangqiang", {"transition_id": 152})
    assert (await ticket(api, ticket_id)).state_id == 104
    types = [log.intervene_type for log in await logs(api, ticket_id)]
    assert types[1:3] == [InterveneType.ADD_NODE, InterveneType.ADD_NODE_END]


async def test_retreat_withdraws_the_ticket(api: Api) -> None:
    ticket_id = await create_leave(api)
    await succeed(api, "POST", f"tickets/{ticket_id}/retreat", "liuyang", {"suggestion": "wrong dates"})
    t = await ticket(api, ticket_id)
    assert (t.state_id, t.act_state) == (101, ActState.WITHDRAWN)
    last = (await logs(api, ticket_id))[-1]
    assert (last.intervene_type, last.suggestion) == (InterveneType.RETREAT, "wrong dates")
    # back at the start state, the creator may close it
    await succeed(api, "POST", f"tickets/{ticket_id}/close", "liuyang", {"suggestion": "never mind"})
    assert (await ticket(api, ticket_id)).act_state == ActState.CLOSED


async def test_admin_closes_a_ticket(api: Api) -> None:
    ticket_id = await create_leave(api)
    await succeed(api, "POST", f"tickets/{ticket_id}/close", "admin", {"suggestion": "duplicate"})
    t = await ticket(api, ticket_id)
    assert (t.state_id, t.act_state, t.participants) == (105, ActState.CLOSED, ())
    last = (await logs(api, ticket_id))[-1]
    assert (last.actor, last.intervene_type, last.suggestion) == ("admin", InterveneType.CLOSE, "duplicate")


async def test_admin_changes_the_state(api: Api) -> None:
    ticket_id = await create_leave(api)
    await succeed(api, "PUT", f"tickets/{ticket_id}/state", "admin", {"state_id": 104, "suggestion": "skip"})
    t = await ticket(api, ticket_id)
    assert t.state_id == 104
    assert set(t.participants) == {"yangfan", "chenjing"}
    last = (await logs(api, ticket_id))[-1]
    assert (last.intervene_type, last.state_id, last.suggestion) == (InterveneType.ALTER_STATE, 102, "skip")


async def test_admin_updates_fields(api: Api) -> None:
    ticket_id = await create_leave(api)
    await succeed(
        api,
        "PATCH",
        f"tickets/{ticket_id}/fields",
        "admin",
        {"reason": "corrected", "days": "3", "suggestion": "typo"},
    )
    t = await ticket(api, ticket_id)
    assert (t.fields["reason"], t.fields["days"], t.state_id) == ("corrected", 3, 102)
    last = (await logs(api, ticket_id))[-1]
    assert (last.intervene_type, last.suggestion) == (InterveneType.UPDATE_FIELDS, "typo")


async def test_comment_is_logged_and_changes_no_state(api: Api) -> None:
    ticket_id = await create_leave(api)
    await succeed(api, "POST", f"tickets/{ticket_id}/comments", "liuyang", {"suggestion": "any news?"})
    t = await ticket(api, ticket_id)
    assert (t.state_id, t.participants) == (102, ("wangqiang",))
    last = (await logs(api, ticket_id))[-1]
    assert (last.actor, last.intervene_type, last.suggestion) == (
        "liuyang",
        InterveneType.COMMENT,
        "any news?",
    )


async def test_admin_deletes_a_ticket(api: Api) -> None:
    ticket_id = await create_leave(api)
    status, body = await api.call(
        "DELETE", f"tickets/{ticket_id}", username="admin", json={"suggestion": "spam"}
    )
    assert (status, body) == (200, {"code": 0, "msg": "", "data": {}})
    assert (await ticket(api, ticket_id)).is_deleted
    last = (await logs(api, ticket_id))[-1]
    assert (last.intervene_type, last.suggestion) == (InterveneType.DELETE, "spam")
    status, body = await api.call(
        "PATCH", f"tickets/{ticket_id}", username="wangqiang", json={"transition_id": 152}
    )
    assert body["code"] == -1
    assert body["msg"] == f"ticket {ticket_id} does not exist"


async def test_delete_without_a_body(api: Api) -> None:
    ticket_id = await create_leave(api)
    await succeed(api, "DELETE", f"tickets/{ticket_id}", "admin")
    assert (await ticket(api, ticket_id)).is_deleted


# ------------------------------------------------------------------------------------------- hooks


async def _to_hook_state(api: Api) -> int:
    """An IT access request that reached 205 (自动授权), its provisioning hook called (the local
    hook target answered {"code": 0}) and waiting for the callback."""
    ticket_id = await create(api, "liuyang", IT_ACCESS, 251, **IT_FIELDS)
    await succeed(api, "PATCH", f"tickets/{ticket_id}", "wangqiang", {"transition_id": 252})
    await succeed(api, "POST", f"tickets/{ticket_id}/accept", "sunhao")
    await succeed(
        api, "PATCH", f"tickets/{ticket_id}", "sunhao", {"transition_id": 256, "ops_note": "group dev"}
    )
    t = await ticket(api, ticket_id)
    assert (t.state_id, t.participant_type) == (205, ParticipantType.HOOK)
    await api.hooks_settled()
    return ticket_id


async def test_hook_failure_retry_and_success(api: Api) -> None:
    ticket_id = await _to_hook_state(api)
    await succeed(
        api, "POST", f"tickets/{ticket_id}/hook_call_back", "admin", {"result": False, "msg": "LDAP down"}
    )
    t = await ticket(api, ticket_id)
    assert (t.state_id, t.script_run_last_result) == (205, False)
    last = (await logs(api, ticket_id))[-1]
    assert (last.actor, last.intervene_type, last.suggestion) == ("hook", InterveneType.HOOK, "LDAP down")

    body = await succeed(api, "POST", f"tickets/{ticket_id}/retry_script", "liuyang")
    assert body["msg"] == RETRY_MSG
    t = await ticket(api, ticket_id)
    assert (t.state_id, t.script_run_last_result) == (205, True)
    await api.hooks_settled()  # the retried hook is called: a new call waits for the callback

    await succeed(
        api,
        "POST",
        f"tickets/{ticket_id}/hook_call_back",
        "admin",
        {"result": True, "msg": "granted", "field_value": {}},
    )
    t = await ticket(api, ticket_id)
    assert (t.state_id, t.participants) == (206, ("liuyang",))
    last = (await logs(api, ticket_id))[-1]
    assert (last.actor, last.transition_id, last.suggestion) == ("hook", 258, "granted")

    await succeed(api, "PATCH", f"tickets/{ticket_id}", "liuyang", {"transition_id": 260})
    assert (await ticket(api, ticket_id)).act_state == ActState.FINISHED


async def test_hook_callback_with_string_result(api: Api) -> None:
    ticket_id = await _to_hook_state(api)
    await succeed(api, "POST", f"tickets/{ticket_id}/hook_call_back", "admin", {"result": "true"})
    assert (await ticket(api, ticket_id)).state_id == 206
