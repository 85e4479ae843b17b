"""HTTP plumbing shared by every route: JSON errors, never a stack trace in a response."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger("ticketbot.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason, "status": exc.status}, status=exc.status)
    except ConnectionResetError:  # the client went away mid-request: nobody reads this answer
        log.info("client went away mid-request", extra={"path": request.path, "method": request.method})
        return web.json_response({"error": "the request ended early", "status": 400}, status=400)
    except Exception:  # a bug: log it with its trace, answer without one
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return web.json_response({"error": "internal error; see the server log"}, status=500)
