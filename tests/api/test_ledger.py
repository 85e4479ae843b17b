"""GET /api/v1.0/tickets/{id}/deliveries, the delivery ledger, through the real app (signed calls,
SQLite and PostgreSQL), with a recording WeCom sender: who was told what, where, when and with
which result; the same access rules as the ticket's detail; credentials never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.app import NOTIFIER
from bot.notify.ports import SendFailed
from core.commands import Handle
from tests.api.conftest import CONFIG, Api, make_api
from tests.api.test_tickets_read import create, data, refusal, run
from tests.fakes import RecordingSender


async def ledger(api: Api, ticket_id: int, username: str = "admin") -> list[dict[str, Any]]:
    got = await data(api, f"tickets/{ticket_id}/deliveries", username)
    assert got["total"] == len(got["value"])
    return list(got["value"])


async def settle(api: Api) -> None:
    await api.client.app[NOTIFIER].drain()


async def test_the_ledger_tells_who_was_told_what_where_and_when(api: Api) -> None:
    tid = await create(api)
    await settle(api)
    (card,) = await ledger(api, tid)
    assert card["recipient"] == {"username": "wangqiang", "alias": "王强"}
    assert (card["platform"], card["address"], card["kind"], card["kind_name"]) == (
        "wecom",
        "WangQiang",
        "pending",
        "待处理",
    )
    assert card["what"].startswith("待处理卡片（") and card["status"] == "sent"
    assert card["msg_id"] and card["sent_at"] and card["created_at"] and card["closed_at"] == ""
    assert (card["attempts"], card["last_error"], card["due_at"]) == (0, "", "")

    await run(api, tid, Handle("wangqiang", 152))
    await settle(api)
    items = await ledger(api, tid)
    assert items[0]["id"] == card["id"] and items[0]["closed_at"] and items[0]["status"] == "sent"
    assert [i["created_at"] for i in items] == sorted(i["created_at"] for i in items)
    (notice,) = [i for i in items if i["kind"] == "notice"]
    assert notice["recipient"]["username"] == "liuyang" and notice["what"] == "已同意 · 王强"
    handlers = {i["recipient"]["username"] for i in items[1:] if i["kind"] == "pending"}
    assert handlers == {"yangfan", "chenjing"}  # the HR role's cards, accept first


async def test_a_failed_delivery_shows_its_error_with_credentials_masked(api: Api) -> None:
    sender = api.client.app[NOTIFIER].senders["wecom"]
    assert isinstance(sender, RecordingSender)
    sender.fail.append(
        SendFailed("HTTP 502 from /cgi-bin/message/send?access_token=s3cr3t-token&x=1", retry_after=30)
    )
    tid = await create(api)
    await settle(api)
    (card,) = await ledger(api, tid)
    assert (card["status"], card["status_name"], card["attempts"]) == ("pending", "待发送", 1)
    assert card["last_error"] == "HTTP 502 from /cgi-bin/message/send?access_token=***&x=1"
    assert card["due_at"] and card["sent_at"] == ""


async def test_the_ledger_has_the_access_of_the_ticket_detail(api: Api) -> None:
    tid = await create(api)
    await settle(api)
    assert await refusal(api, f"tickets/{tid}/deliveries", "heping") == (
        f"you have no permission to view ticket {tid}"
    )
    assert await refusal(api, "tickets/987654321/deliveries") == "ticket 987654321 does not exist"
    assert len(await ledger(api, tid, "liuyang")) == 1  # the requester sees it
    assert len(await ledger(api, tid, "yangfan")) == 1  # a viewer of the workflow too


async def test_strict_statuses_are_404_and_403(
    aiohttp_client: Any, database_url: str, tmp_path: Path
) -> None:
    api = await make_api(aiohttp_client, database_url, CONFIG, {"TICKETBOT_API_STRICT_STATUS": "1"})
    tid = await create(api)
    status, body = await api.call("GET", f"tickets/{tid}/deliveries", username="heping")
    assert (status, body["code"]) == (403, -1)
    status, body = await api.call("GET", "tickets/987654321/deliveries")
    assert (status, body["code"]) == (404, -1)
    status, body = await api.call("GET", f"tickets/{tid}/deliveries", username="liuyang")
    assert status == 200 and body["code"] == 0
