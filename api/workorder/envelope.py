"""The open API envelope: ``{"errcode": 0, "errmsg": "ok", ...}`` on success, ``{"errcode": N,
"errmsg": "..."}`` with a 4xx on failure (api.workorder.errcodes), and the mapping of engine
outcomes and of every other failure onto it. Never a stack trace in an answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from api.errors import ApiError
from api.workorder.errcodes import REASON_CODES, UNKNOWN_ORDER_MSG, ErrCode, WorkOrderError
from core.errors import Reason, Rejected
from core.service import AlreadyHandled, Done, Result

log = logging.getLogger("ticketbot.api.workorder")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
INTERNAL_MSG = "internal error; the server log has the details"


def ok(**data: Any) -> web.Response:
    return web.json_response({"errcode": 0, "errmsg": "ok", **data})


def fail(errcode: ErrCode, errmsg: str, status: int) -> web.Response:
    return web.json_response({"errcode": int(errcode), "errmsg": errmsg}, status=status)


def raise_for(result: Result) -> Done:
    """The Done of a service call, or a WorkOrderError carrying the engine's own sentence."""
    if isinstance(result, Done):
        return result
    if isinstance(result, AlreadyHandled):
        raise WorkOrderError(ErrCode.NOT_NOW, result.message)
    refused: Rejected = result
    code = REASON_CODES.get(refused.reason, ErrCode.BAD_PARAM)
    if refused.reason == Reason.NOT_FOUND:
        raise WorkOrderError(code, f"{UNKNOWN_ORDER_MSG} ({refused.message})")
    raise WorkOrderError(code, refused.message)


def from_api_error(exc: ApiError) -> WorkOrderError:
    """A refusal of the shared request readers (api.params): body size, JSON, integers."""
    if exc.status == 413:
        return WorkOrderError(ErrCode.BAD_PARAM, exc.msg, 413)
    return WorkOrderError(ErrCode.BAD_PARAM, exc.msg)


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure of the /open-api sub-application in the errcode envelope."""
    try:
        return await handler(request)
    except WorkOrderError as exc:
        log.info(
            "open api request refused",
            extra={"path": request.path, "errcode": int(exc.errcode), "why": exc.errmsg},
        )
        return fail(exc.errcode, exc.errmsg, exc.status)
    except ApiError as exc:
        refused = from_api_error(exc)
        return fail(refused.errcode, refused.errmsg, refused.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 413:
            return fail(ErrCode.BAD_PARAM, "request body is too large", 413)
        if exc.status == 405:
            msg = f"{request.path} does not take {request.method}"
            return fail(ErrCode.NO_ENDPOINT, msg, 405)
        if exc.status == 404:
            return fail(ErrCode.NO_ENDPOINT, f"no endpoint {request.path[:100]}", 404)
        return fail(ErrCode.BAD_PARAM, exc.reason, exc.status)
    except Exception:
        log.exception("open api request failed", extra={"path": request.path, "method": request.method})
        return fail(ErrCode.INTERNAL, INTERNAL_MSG, 500)
