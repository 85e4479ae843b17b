"""The loonflow envelope {"code", "msg", "data"} and the mapping of engine outcomes onto it.

HTTP status policy: like loonflow, every answer is HTTP 200 and `code` says success (0) or failure
(-1). With strict statuses on (TICKETBOT_API_STRICT_STATUS=1) failures carry a 4xx status too:
400 bad input, 401 authentication, 403 permission, 404 unknown ticket or workflow, 409 a conflict
with the ticket's current state (already handled, ended, stale), 413 body too large.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.context import context
from api.errors import ApiError
from core.errors import Reason, Rejected
from core.service import AlreadyHandled, Done, Result

REASON_STATUS: dict[Reason, int] = {
    Reason.NOT_FOUND: 404,
    Reason.NOT_PARTICIPANT: 403,
    Reason.NO_PERMISSION: 403,
    Reason.UNKNOWN_USER: 403,
    Reason.BAD_TRANSITION: 400,
    Reason.BAD_STATE: 400,
    Reason.BAD_FIELD: 400,
    Reason.MISSING_FIELD: 400,
    Reason.READ_ONLY_FIELD: 400,
    Reason.INVALID: 400,
    Reason.NO_PARTICIPANT: 409,
    Reason.TICKET_ENDED: 409,
    Reason.MUST_ACCEPT: 409,
    Reason.IN_ADD_NODE: 409,
    Reason.ALREADY_VOTED: 409,
    Reason.STALE: 409,
}


def ok(data: Any = None, msg: str = "") -> web.Response:
    return web.json_response({"code": 0, "msg": msg, "data": {} if data is None else data})


def fail(request: web.Request, msg: str, status: int = 400) -> web.Response:
    strict = context(request).strict_status
    return web.json_response({"code": -1, "msg": msg, "data": {}}, status=status if strict else 200)


def raise_for(result: Result) -> Done:
    """The Done of a service call, or an ApiError carrying the engine's reason."""
    if isinstance(result, Done):
        return result
    if isinstance(result, AlreadyHandled):
        raise ApiError(result.message, 409)
    refused: Rejected = result
    raise ApiError(refused.message, REASON_STATUS.get(refused.reason, 400))
