"""POST /open-api/workorder/msg/link: link chat records to an order (its ``msg_list``).

Body (JSON)::

    {"order_no": "...",
     "msg_ids": ["msgid", ...],                 records kept already (会话存档, chat, api)
     "records": [{"msgid": "...", "from": "...", "to": ["..."] or "...", "roomid": "",
                  "msgtime": 1639741382, "msgtype": "text", "text": "..."}]}

``records`` are kept first (source "api"; one kept already stays as it was) and linked too. At
least one id is needed; an id that names no kept record and is not among ``records`` refuses the
whole request (22304, naming the ids), and nothing is kept or linked. ``msgtime`` is epoch seconds
(13 digits are taken as milliseconds). Anyone who may see the order may link records to it (the
detail's ``button_operate.chat_record``). Linking a record twice changes nothing.

-> ``{"errcode": 0, "errmsg": "ok", "order_no": "...", "linked": [ids newly linked],
"msg_list": [every linked id, in the order linked]}``
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from api.context import caller
from api.workorder import params
from api.workorder.buttons import button_operate
from api.workorder.context import workorder_context
from api.workorder.envelope import ok
from api.workorder.errcodes import ErrCode, WorkOrderError, bad, missing
from api.workorder.orders import visible_order
from api.workorder.steps import number
from core.workorder import ChatRecord

LINK_KEYS = frozenset({"order_no", "msg_ids", "records"})
RECORD_KEYS = frozenset({"msgid", "from", "to", "roomid", "msgtime", "msgtype", "text"})
MAX_RECORDS = 100
MAX_ID = 128
MAX_TEXT = 10_000
MAX_EPOCH = 253_402_300_799
SOURCE = "api"


API_PREFIX = "api:"


def _string(
    item: dict[str, Any], key: str, where: str, *, limit: int = MAX_ID, required: bool = False
) -> str:
    raw = item.get(key)
    if raw is None or raw == "":
        if required:
            raise missing(f"{where}.{key}")
        return ""
    if not isinstance(raw, str) or len(raw) > limit:
        raise bad(f"'{where}.{key}' must be a string of at most {limit} characters")
    return raw


def _sent_at(item: dict[str, Any], where: str) -> datetime:
    raw = item.get("msgtime")
    if raw is None:
        raise missing(f"{where}.msgtime")
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise bad(f"'{where}.msgtime' must be epoch seconds (an integer)")
    seconds = raw // 1000 if raw >= 10**12 else raw
    if seconds > MAX_EPOCH:
        raise bad(f"'{where}.msgtime' is out of range")
    return datetime.fromtimestamp(seconds, UTC)


def _record(item: Any, index: int) -> ChatRecord:
    where = f"records[{index}]"
    if not isinstance(item, dict):
        raise bad(f"'{where}' must be an object {{msgid, from, to, msgtime, msgtype, text}}")
    unknown = sorted(set(item) - RECORD_KEYS)
    if unknown:
        raise bad(f"'{where}': unknown key {unknown[0][:40]!r}")
    to = item.get("to")
    if isinstance(to, str):
        to = [to] if to else []
    if to is None:
        to = []
    if not isinstance(to, list) or not all(isinstance(t, str) and 0 < len(t) <= MAX_ID for t in to):
        raise bad(f"'{where}.to' must be a list of ids")
    msgid = _string(item, "msgid", where, limit=MAX_ID - len(API_PREFIX), required=True).strip()
    if not msgid:
        raise missing(f"{where}.msgid")
    return ChatRecord(
        # kept as "api:<msgid>": a caller can't take the id of an archive or chat record not kept yet
        id=f"{API_PREFIX}{msgid}",
        source=SOURCE,
        sent_at=_sent_at(item, where),
        from_id=_string(item, "from", where),
        to_ids=tuple(to),
        room_id=_string(item, "roomid", where),
        msg_type=_string(item, "msgtype", where, limit=32) or "text",
        content={"text": _string(item, "text", where, limit=MAX_TEXT)},
    )


def _records(data: dict[str, Any]) -> list[ChatRecord]:
    raw = data.get("records")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad("'records' must be a list of {msgid, from, to, msgtime, msgtype, text}")
    if len(raw) > MAX_RECORDS:
        raise bad(f"'records' has {len(raw)} items; at most {MAX_RECORDS}")
    return [_record(item, i) for i, item in enumerate(raw)]


async def link(request: web.Request) -> web.Response:
    who = caller(request)
    wctx = workorder_context(request)
    data = await params.body(request, LINK_KEYS)
    records = _records(data)
    ids = list(dict.fromkeys([*params.string_ids(data, "msg_ids"), *(r.id for r in records)]))
    if not ids:
        raise missing("msg_ids")
    order = await visible_order(request, who, data.get("order_no"))
    if not button_operate(order.ticket, order.wf, order.org, who.username)["chat_record"]:
        raise WorkOrderError(ErrCode.NO_PERMISSION, f"you may not link chat records to {number(order)}")
    given = {r.id for r in records}
    kept = {r.id for r in await wctx.chat_records.get([i for i in ids if i not in given])}
    unknown = [i for i in ids if i not in given and i not in kept]
    if unknown:
        shown = ", ".join(repr(m[:40]) for m in unknown[:10])
        raise WorkOrderError(ErrCode.UNKNOWN_MESSAGE, f"msg_ids: no kept chat record {shown}")
    now = wctx.api.clock.now()
    if records:
        await wctx.chat_records.add(records, now)
    linked = await wctx.chat_records.link(order.ticket.id, ids, who.username, now)
    return ok(order_no=number(order), linked=linked, msg_list=await wctx.chat_records.linked(order.ticket.id))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/workorder/msg/link", link)
