"""GET /api/v1.0/tickets/{id}/deliveries: the ticket's delivery ledger, an extension of the
loonflow dialect.

Who was told what, where, when and with which result: every card (待处理), urge (催办), CC (抄送)
and notice the ticket caused, one item per person per platform, oldest first. Same access as the
ticket's detail (404 unknown or deleted ticket, 403 when the user may not view it or the app may
not use its workflow). Times are UTC "YYYY-MM-DD HH:MM:SS" ("" when not yet). `last_error` is the
platform's error text with anything that looks like a credential masked.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from api.envelope import ok
from api.errors import ApiError
from api.ledger import LedgerDelivery
from api.loonflow.tickets_read import _visible_ticket
from api.loonflow.views import fmt_time
from core.org import Org
from core.workflow import Workflow

KIND_NAMES = {"pending": "待处理", "urge": "催办", "cc": "抄送", "notice": "通知"}
STATUS_NAMES = {"pending": "待发送", "sent": "已发送", "cancelled": "已取消", "dead": "发送失败"}
_SECRET = re.compile(
    r"(?i)(\b(?:x-acs-dingtalk-access-token|access_?token|corpsecret|app_?secret|secret|signature"
    r"|response_?code)\"?\s*[=:]\s*\"?)[^\s&\",}]+"
)


def masked(text: str) -> str:
    """`text` with values of credential-like parameters replaced by "***"."""
    return _SECRET.sub(r"\1***", text)


def _alias(org: Org, username: str) -> str:
    user = org.user(username)
    return user.alias if user is not None and user.alias else username


def _what(d: LedgerDelivery, wf: Workflow, org: Org) -> str:
    state = wf.state(d.state_id)
    at = state.name if state is not None else f"状态 {d.state_id}"
    if d.kind == "pending":
        return f"待处理卡片（{at}）"
    if d.kind == "urge":
        by = f"{_alias(org, d.actor)}催办" if d.actor else "催办"
        return f"{by}（{at}）" + (f"：{d.note}" if d.note else "")
    if d.kind == "cc":
        return f"抄送（{at}）"
    return d.note or KIND_NAMES.get(d.kind, d.kind)


def ledger_item(d: LedgerDelivery, wf: Workflow, org: Org) -> dict[str, Any]:
    return {
        "id": d.id,
        "recipient": {"username": d.recipient, "alias": _alias(org, d.recipient)},
        "platform": d.platform,
        "address": d.address,
        "kind": d.kind,
        "kind_name": KIND_NAMES.get(d.kind, d.kind),
        "what": _what(d, wf, org),
        "result": d.close_note,
        "status": d.status,
        "status_name": STATUS_NAMES.get(d.status, d.status),
        "attempts": d.attempts,
        "last_error": masked(d.last_error),
        "msg_id": d.msg_id,
        "created_at": fmt_time(d.created_at),
        "due_at": fmt_time(d.due_at) if d.status == "pending" else "",
        "sent_at": fmt_time(d.sent_at),
        "closed_at": fmt_time(d.closed_at),
    }


async def ticket_deliveries(request: web.Request) -> web.Response:
    ctx, _, ticket, wf, org = await _visible_ticket(request)
    if ctx.deliveries is None:
        raise ApiError("no delivery ledger is kept by this server", 404)
    rows = await ctx.deliveries.for_ticket(ticket.id)
    value = [ledger_item(d, wf, org) for d in rows]
    return ok({"value": value, "total": len(value)})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(r"/tickets/{ticket_id:[0-9]+}/deliveries", ticket_deliveries)
