"""Bad input to the loonflow v1.0 write routes: each answer is HTTP 200 with {"code": -1, "msg": <what
is wrong>} (loonflow's dialect; never a 500 or a traceback) and changes nothing. One test runs the
app with strict statuses and checks the 4xx codes.

A leave request by liuyang waits in 102 for his team leader wangqiang; maxiaoyu (finance) has
nothing to do with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from store.queries import flow_logs
from tests.api.conftest import Api, loonflow_headers
from tests.api.test_tickets_write import (
    LEAVE_FIELDS,
    create_leave,
    custom_api,
    succeed,
    ticket,
    ticket_count,
)

STRANGER = "maxiaoyu"  # may not even see a leave request of 技术部
VIEWER = "yangfan"  # a viewer of every leave request (permissions.viewers)
BIG = 1024 * 1024
OVERSIZE = b'{"suggestion": "' + b"a" * BIG + b'"}'


class AppCredentials(TypedDict):
    app: str
    token: str


NARROW: AppCredentials = {"app": "narrow", "token": "narrow-token"}

# (username, method, path after tickets/{id}, JSON body, a part of the expected message)
TICKET_CASES: list[tuple[str, str, str, Any, str]] = [
    # missing / invalid parameters
    ("wangqiang", "PATCH", "", {}, "'transition_id' is required"),
    ("wangqiang", "PATCH", "", {"transition_id": None}, "'transition_id' is required"),
    ("wangqiang", "PATCH", "", {"transition_id": " "}, "'transition_id' is required"),
    ("wangqiang", "PATCH", "", {"transition_id": "abc"}, "'transition_id' must be an integer"),
    ("wangqiang", "PATCH", "", {"transition_id": True}, "'transition_id' must be an integer, got a boolean"),
    ("wangqiang", "PATCH", "", {"transition_id": 1.5}, "'transition_id' must be an integer"),
    ("wangqiang", "PATCH", "", {"transition_id": [152]}, "'transition_id' must be an integer, got a list"),
    ("wangqiang", "PATCH", "", {"transition_id": {"id": 152}}, "'transition_id' must be an integer"),
    ("wangqiang", "PATCH", "", {"transition_id": 10**30}, "'transition_id' is out of range"),
    ("wangqiang", "PATCH", "", {"transition_id": 152, "suggestion": 5}, "'suggestion' must be a string"),
    ("wangqiang", "DELETE", "", {"suggestion": ["x"]}, "'suggestion' must be a string"),
    ("admin", "PUT", "/state", {}, "'state_id' is required"),
    ("admin", "PUT", "/state", {"state_id": "one"}, "'state_id' must be an integer"),
    ("admin", "PATCH", "/fields", {}, "at least one field"),
    ("admin", "PATCH", "/fields", {"suggestion": "only a note"}, "at least one field"),
    ("wangqiang", "POST", "/deliver", {}, "'target_username' is required"),
    ("wangqiang", "POST", "/deliver", {"target_username": ""}, "'target_username' is required"),
    ("wangqiang", "POST", "/deliver", {"target_username": 7}, "'target_username' must be a string"),
    (
        "wangqiang",
        "POST",
        "/deliver",
        {"target_username": "lina", "from_admin": "maybe"},
        "'from_admin' must be a boolean",
    ),
    ("wangqiang", "POST", "/add_node", {}, "'target_username' is required"),
    ("liuyang", "POST", "/comments", {}, "'suggestion' is required"),
    ("liuyang", "POST", "/comments", {"suggestion": "   "}, "'suggestion' is required"),
    ("admin", "POST", "/hook_call_back", {}, "'result' is required"),
    ("admin", "POST", "/hook_call_back", {"result": "yes"}, "'result' must be a boolean"),
    ("admin", "POST", "/hook_call_back", {"result": 2}, "'result' must be a boolean"),
    ("admin", "POST", "/hook_call_back", {"result": True, "msg": 3}, "'msg' must be a string"),
    (
        "admin",
        "POST",
        "/hook_call_back",
        {"result": True, "field_value": [1]},
        "'field_value' must be an object",
    ),
    # transitions and states that are not allowed here
    ("wangqiang", "PATCH", "", {"transition_id": 351}, "transition 351 is not available"),
    ("wangqiang", "PATCH", "", {"transition_id": 0}, "transition 0 is not available"),
    ("admin", "PUT", "/state", {"state_id": 999}, "has no state 999"),
    ("wangqiang", "POST", "/accept", {}, "needs no accept"),
    ("wangqiang", "POST", "/add_node_end", {}, "not out for consultation"),
    ("wangqiang", "POST", "/add_node", {"target_username": "wangqiang"}, "cannot consult yourself"),
    ("liuyang", "POST", "/retry_script", {}, "no hook to retry"),
    ("admin", "POST", "/hook_call_back", {"result": True}, "not waiting for a hook"),
    # fields: read-only, unknown, wrong type
    ("wangqiang", "PATCH", "", {"transition_id": 152, "days": 9}, "read-only"),
    ("wangqiang", "PATCH", "", {"transition_id": 152, "dayz": 2}, "unknown field 'dayz'"),
    ("wangqiang", "PATCH", "", {"transition_id": 152, "x" * 500: 1}, "unknown field 'xxx"),
    ("admin", "PATCH", "/fields", {"nope": 1}, "unknown field 'nope'"),
    ("admin", "PATCH", "/fields", {"days": "many"}, "(days)"),
    ("admin", "PATCH", "/fields", {"proxy": "ghost"}, "(proxy)"),
    # text the database cannot store
    ("liuyang", "POST", "/comments", {"suggestion": "a\x00b"}, "'suggestion' contains a NUL character"),
    ("admin", "PATCH", "/fields", {"reason": "a\ud800b"}, "'reason' contains a NUL character"),
    ("admin", "PATCH", "/fields", {"re\x00ason": "a"}, "'re?ason' contains"),
    (
        "admin",
        "POST",
        "/hook_call_back",
        {"result": True, "field_value": {"x": ["\udc00"]}},
        "'field_value' contains",
    ),
    # users
    ("wangqiang", "POST", "/deliver", {"target_username": "ghost"}, "no active user 'ghost'"),
    ("wangqiang", "POST", "/add_node", {"target_username": "ghost"}, "no active user 'ghost'"),
    ("wangqiang", "POST", "/deliver", {"target_username": "x" * 5000}, "no active user 'xxx"),
    # no permission: yangfan may see leave requests (a viewer) but has no role here
    (VIEWER, "PATCH", "", {"transition_id": 152}, "not a current handler"),
    (VIEWER, "DELETE", "", {}, "only an admin"),
    ("wangqiang", "DELETE", "", {}, "only an admin"),
    (VIEWER, "PUT", "/state", {"state_id": 104}, "needs admin or intervene permission"),
    ("wangqiang", "PUT", "/state", {"state_id": 104}, "needs admin or intervene permission"),
    (VIEWER, "PATCH", "/fields", {"reason": "x"}, "cannot edit the fields"),
    (VIEWER, "POST", "/accept", {}, "needs no accept"),
    (VIEWER, "POST", "/deliver", {"target_username": "lina"}, "not a current handler"),
    (VIEWER, "POST", "/deliver", {"target_username": "lina", "from_admin": 1}, "forced deliver needs admin"),
    (VIEWER, "POST", "/add_node", {"target_username": "lina"}, "not a current handler"),
    (VIEWER, "POST", "/close", {}, "only an admin"),
    ("liuyang", "POST", "/close", {}, "only an admin"),  # the creator, but not at the start state
    ("wangqiang", "POST", "/retreat", {}, "only the creator"),
    (VIEWER, "POST", "/retry_script", {}, "no hook to retry"),
]

ROUTES: list[tuple[str, str, Any]] = [  # every ticket route with a body it would accept
    ("PATCH", "", {"transition_id": 152}),
    ("DELETE", "", {}),
    ("PUT", "/state", {"state_id": 104}),
    ("PATCH", "/fields", {"reason": "x"}),
    ("POST", "/accept", {}),
    ("POST", "/deliver", {"target_username": "lina"}),
    ("POST", "/add_node", {"target_username": "lina"}),
    ("POST", "/add_node_end", {}),
    ("POST", "/retry_script", {}),
    ("POST", "/comments", {"suggestion": "hi"}),
    ("POST", "/hook_call_back", {"result": True}),
    ("POST", "/close", {}),
    ("POST", "/retreat", {}),
]

BAD_BODIES: list[tuple[bytes, str]] = [
    (b'{"transition_id": ', "malformed JSON body"),
    (b"{'transition_id': 152}", "malformed JSON body"),
    (b"[1, 2]", "must be an object, got list"),
    (b'"text"', "must be an object, got str"),
    (b"3", "must be an object, got int"),
    (b"null", "must be an object"),
    (b'{"suggestion": "\xff"}', "not UTF-8"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"transition_id": ' + b"1" * 5000 + b"}", "malformed JSON body"),
]


async def state_of(api: Api, ticket_id: int) -> tuple[object, int, int]:
    """The stored ticket, its flow-log count and the number of tickets: all must stay unchanged."""
    return (
        await ticket(api, ticket_id),
        len(await flow_logs(api.runtime.db, ticket_id)),
        await ticket_count(api),
    )


async def refused(
    api: Api,
    method: str,
    path: str,
    *,
    watch: int,
    expect: str,
    username: str = "liuyang",
    status: int = 200,
    **kw: Any,
) -> str:
    """Call; insist on a clear loonflow failure that changed nothing on ticket `watch`."""
    before = await state_of(api, watch)
    http, body = await api.call(method, path, username=username, **kw)
    where = f"{method} {path} as {username}: {body}"
    assert http == status, where
    assert body["code"] == -1, where
    assert body["data"] == {}, where
    msg = body["msg"]
    assert isinstance(msg, str) and msg.strip(), where
    assert expect in msg, f"expected {expect!r} in the message; {where}"
    assert "Traceback" not in msg and "internal error" not in msg, where
    assert len(msg) < 1000, where
    assert await state_of(api, watch) == before, f"{where} changed something"
    return msg


# ------------------------------------------------------------------------------------------ tickets


async def test_bad_parameters_and_refused_actions_change_nothing(api: Api) -> None:
    ticket_id = await create_leave(api)
    for username, method, suffix, body, expect in TICKET_CASES:
        await refused(
            api,
            method,
            f"tickets/{ticket_id}{suffix}",
            username=username,
            json=body,
            watch=ticket_id,
            expect=expect,
        )


async def test_unknown_ticket(api: Api) -> None:
    ticket_id = await create_leave(api)
    for method, suffix, body in ROUTES:
        await refused(
            api,
            method,
            f"tickets/999999{suffix}",
            username="admin",
            json=body,
            watch=ticket_id,
            expect="ticket 999999 does not exist",
        )
    for raw in ("0", "000", "9" * 30):
        msg = await refused(api, "POST", f"tickets/{raw}/accept", watch=ticket_id, expect="does not exist")
        assert msg.startswith("ticket ")
    await refused(api, "PATCH", "tickets/abc", json={"transition_id": 152}, watch=ticket_id, expect="")


async def test_malformed_and_non_object_bodies(api: Api) -> None:
    ticket_id = await create_leave(api)
    paths = [(m, f"tickets/{ticket_id}{s}") for m, s, _ in ROUTES] + [("POST", "tickets")]
    for method, path in paths:
        for raw, expect in BAD_BODIES:
            await refused(
                api,
                method,
                path,
                username="wangqiang",
                data=raw,
                headers={**loonflow_headers("wangqiang"), "content-type": "application/json"},
                watch=ticket_id,
                expect=expect,
            )


async def test_oversized_body(api: Api) -> None:
    ticket_id = await create_leave(api)
    for method, path in (
        ("PATCH", f"tickets/{ticket_id}"),
        ("POST", "tickets"),
        ("POST", f"tickets/{ticket_id}/comments"),
    ):
        await refused(
            api,
            method,
            path,
            username="wangqiang",
            data=OVERSIZE,
            watch=ticket_id,
            expect=f"larger than {BIG} bytes",
        )


async def test_already_handled(api: Api) -> None:
    ticket_id = await create_leave(api)
    await succeed(api, "PATCH", f"tickets/{ticket_id}", "wangqiang", {"transition_id": 152})
    msg = await refused(
        api,
        "PATCH",
        f"tickets/{ticket_id}",
        username="wangqiang",
        json={"transition_id": 152},
        watch=ticket_id,
        expect="was already handled",
    )
    assert "by you at" in msg
    await succeed(api, "POST", f"tickets/{ticket_id}/accept", "yangfan")
    await refused(
        api,
        "POST",
        f"tickets/{ticket_id}/accept",
        username="chenjing",
        watch=ticket_id,
        expect="already accepted by yangfan",
    )


async def test_a_stranger_learns_nothing(api: Api) -> None:
    ticket_id = await create_leave(api)
    for method, suffix, body in ROUTES:
        if suffix == "/hook_call_back":  # acts as the hook: not about the user
            continue
        msg = await refused(
            api,
            method,
            f"tickets/{ticket_id}{suffix}",
            username=STRANGER,
            json=body,
            watch=ticket_id,
            expect=f"you have no permission to view ticket {ticket_id}",
        )
        assert "wangqiang" not in msg and "loonflow_" not in msg


async def test_deleted_and_ended_tickets(api: Api) -> None:
    closed = await create_leave(api)
    await succeed(api, "POST", f"tickets/{closed}/close", "admin")
    await refused(
        api,
        "PATCH",
        f"tickets/{closed}",
        username="wangqiang",
        json={"transition_id": 152},
        watch=closed,
        expect="closed",
    )
    await refused(api, "POST", f"tickets/{closed}/close", username="admin", watch=closed, expect="")
    deleted = await create_leave(api)
    await succeed(api, "DELETE", f"tickets/{deleted}", "admin")
    await refused(
        api, "DELETE", f"tickets/{deleted}", username="admin", watch=deleted, expect="does not exist"
    )
    await refused(
        api,
        "POST",
        f"tickets/{deleted}/comments",
        json={"suggestion": "x"},
        watch=deleted,
        expect=f"ticket {deleted} does not exist",
    )


# ------------------------------------------------------------------------------------------- create


async def test_bad_create_requests_create_nothing(api: Api) -> None:
    existing = await create_leave(api)
    ok = {"workflow_id": 1, "transition_id": 151, **LEAVE_FIELDS}
    without_reason = {k: v for k, v in ok.items() if k != "reason"}
    cases: list[tuple[Any, str]] = [
        ({}, "'workflow_id' is required"),
        ({"transition_id": 151}, "'workflow_id' is required"),
        ({"workflow_id": 1}, "'transition_id' is required"),
        ({**ok, "workflow_id": "1x"}, "'workflow_id' must be an integer"),
        ({**ok, "workflow_id": False}, "'workflow_id' must be an integer, got a boolean"),
        ({**ok, "transition_id": "next"}, "'transition_id' must be an integer"),
        ({**ok, "workflow_id": 99}, "workflow 99 does not exist"),
        ({**ok, "workflow_id": 10**40}, "'workflow_id' is out of range"),
        ({**ok, "transition_id": 152}, "transition 152 does not start"),
        (without_reason, "(reason)"),
        ({**ok, "reason": ""}, "(reason)"),
        ({**ok, "days": "many"}, "(days)"),
        ({**ok, "days": True}, "(days)"),
        ({**ok, "start_date": "yesterday"}, "(start_date)"),
        ({**ok, "leave_type": "party"}, "(leave_type)"),
        ({**ok, "proxy": "ghost"}, "(proxy)"),
        ({**ok, "colour": "red"}, "unknown field 'colour'"),
        ({**ok, "title": 5}, "'title' must be a string"),
        ({**ok, "title": "\x00"}, "'title' contains a NUL character"),
        ({**ok, "suggestion": {}}, "'suggestion' must be a string"),
        ({**ok, "parent_ticket_id": -1}, "'parent_ticket_id' must be at least 0"),
        (
            {**ok, "parent_ticket_id": 999999, "parent_ticket_state_id": 102},
            "parent ticket 999999 does not exist",
        ),
        ({**ok, "parent_ticket_id": existing}, "'parent_ticket_state_id' is required"),
        ({**ok, "parent_ticket_state_id": 102}, "'parent_ticket_id' is required"),
    ]
    for body, expect in cases:
        await refused(api, "POST", "tickets", json=body, watch=existing, expect=expect)
    child = {**ok, "parent_ticket_id": existing, "parent_ticket_state_id": 102}
    parent_cases = [  # (who, body, expected): only the parent's handler (or an admin) adds sub-tickets
        ("wangqiang", {**child, "parent_ticket_state_id": 101}, "is not in state 101"),
        ("liuyang", child, f"only a current handler of ticket {existing}"),  # its creator
        (VIEWER, child, f"only a current handler of ticket {existing}"),
        (STRANGER, child, f"you have no permission to view parent ticket {existing}"),
    ]
    for username, body, expect in parent_cases:
        await refused(api, "POST", "tickets", username=username, json=body, watch=existing, expect=expect)


async def test_unknown_user_is_refused(api: Api) -> None:
    existing = await create_leave(api)
    body = {"workflow_id": 1, "transition_id": 151, **LEAVE_FIELDS}
    await refused(api, "POST", "tickets", username="ghost", json=body, watch=existing, expect="ghost")
    await refused(
        api,
        "PATCH",
        f"tickets/{existing}",
        username="ghost",
        json={"transition_id": 152},
        watch=existing,
        expect="ghost",
    )


# ----------------------------------------------------------------------------------------- app rights


async def test_app_limited_to_other_workflows(aiohttp_client: Any, database_url: str, tmp_path: Path) -> None:
    api = await custom_api(aiohttp_client, database_url, tmp_path)
    ticket_id = await create_leave(api)
    narrow = loonflow_headers("wangqiang", **NARROW)
    expect = "app 'narrow' may not use workflow 1"
    for method, suffix, body in ROUTES:
        await refused(
            api,
            method,
            f"tickets/{ticket_id}{suffix}",
            json=body,
            headers=narrow,
            watch=ticket_id,
            expect=expect,
        )
    create = {"workflow_id": 1, "transition_id": 151, **LEAVE_FIELDS}
    await refused(api, "POST", "tickets", json=create, headers=narrow, watch=ticket_id, expect=expect)
    child = {
        "workflow_id": 3,
        "transition_id": 351,
        "customer_name": "ACME",
        "category": "consult",
        "priority": "normal",
        "description": "question",
        "parent_ticket_id": ticket_id,
        "parent_ticket_state_id": 102,
    }
    await refused(api, "POST", "tickets", json=child, headers=narrow, watch=ticket_id, expect=expect)
    # its own workflow works
    del child["parent_ticket_id"], child["parent_ticket_state_id"]
    status, body = await api.call("POST", "tickets", json=child, headers=narrow)
    assert (status, body["code"]) == (200, 0), body


# ------------------------------------------------------------------------------------ strict statuses


async def test_strict_statuses(aiohttp_client: Any, database_url: str, tmp_path: Path) -> None:
    api = await custom_api(aiohttp_client, database_url, tmp_path, strict=True)
    ticket_id = await create_leave(api)  # success is still 200 / code 0
    path = f"tickets/{ticket_id}"
    await refused(
        api, "PATCH", path, json={}, username="wangqiang", watch=ticket_id, expect="required", status=400
    )
    await refused(
        api, "PATCH", path, data=b"{", username="wangqiang", watch=ticket_id, expect="malformed", status=400
    )
    await refused(
        api,
        "PATCH",
        path,
        json={"transition_id": 351},
        username="wangqiang",
        watch=ticket_id,
        expect="not available",
        status=400,
    )
    await refused(
        api,
        "PATCH",
        path,
        json={"transition_id": 152},
        username=VIEWER,
        watch=ticket_id,
        expect="not a current handler",
        status=403,
    )
    await refused(api, "DELETE", path, username=VIEWER, watch=ticket_id, expect="only an admin", status=403)
    await refused(api, "DELETE", path, username=STRANGER, watch=ticket_id, expect="no permission", status=403)
    await refused(api, "DELETE", "tickets/999999", watch=ticket_id, expect="does not exist", status=404)
    narrow = loonflow_headers("wangqiang", **NARROW)
    await refused(
        api,
        "PATCH",
        path,
        json={"transition_id": 152},
        headers=narrow,
        watch=ticket_id,
        expect="may not use workflow 1",
        status=403,
    )
    await refused(
        api,
        "PATCH",
        "tickets/999999",
        json={"transition_id": 152},
        watch=ticket_id,
        expect="does not exist",
        status=404,
    )
    await refused(
        api,
        "POST",
        "tickets",
        json={"workflow_id": 99, "transition_id": 1},
        watch=ticket_id,
        expect="does not exist",
        status=404,
    )
    await refused(
        api,
        "PATCH",
        path,
        data=OVERSIZE,
        username="wangqiang",
        watch=ticket_id,
        expect="larger than",
        status=413,
    )
    await succeed(api, "PATCH", path, "wangqiang", {"transition_id": 152})
    await refused(
        api,
        "PATCH",
        path,
        json={"transition_id": 152},
        username="wangqiang",
        watch=ticket_id,
        expect="already handled",
        status=409,
    )
    await refused(
        api,
        "POST",
        f"{path}/add_node_end",
        username="wangqiang",
        watch=ticket_id,
        expect="not out for consultation",
        status=400,
    )
