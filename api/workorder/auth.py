"""Who is calling the open API: the same API apps (config/apps.yaml) and the same two signature
schemes as the loonflow dialect (api.auth: loonflow's md5 signature, or the HMAC-SHA256 scheme over
method, path and query, timestamp, nonce, username and body), verified by the same code, with
every refusal in this dialect's envelope::

    {"errcode": 40001, "errmsg": "authentication failed: signature check failed for app 'demo'"}

HTTP 401 (403 for an unknown or inactive ``username``; 413 with errcode 40003 for a body over the
limit while the HMAC scheme hashes it). The acting user is the ``username`` header: a ticketbot
username (not a WeCom userid), who must be an active user of the directory. On success the request
carries api.context.Caller under api.context.CALLER, as in the loonflow dialect.
"""

from __future__ import annotations

from aiohttp import web

from api.auth import FAIL_PREFIX, authenticate
from api.context import CALLER
from api.errors import ApiError
from api.workorder.envelope import Handler
from api.workorder.errcodes import ErrCode, WorkOrderError

AUTH_PREFIX = "authentication failed: "


def refusal(exc: ApiError) -> WorkOrderError:
    """api.auth's refusal in this dialect's words."""
    if exc.status == 413:
        return WorkOrderError(ErrCode.BAD_PARAM, exc.msg, 413)
    why = exc.msg.removeprefix(FAIL_PREFIX)
    return WorkOrderError(ErrCode.AUTH, AUTH_PREFIX + why, exc.status if exc.status in (401, 403) else 401)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate every request of the /open-api sub-application before its handler runs."""
    try:
        request[CALLER] = await authenticate(request)
    except ApiError as exc:
        raise refusal(exc) from None
    return await handler(request)
