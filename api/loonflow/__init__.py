"""The loonflow v1.0 dialect, mounted as a sub-application at /api/v1.0."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from api.context import API_CONTEXT, ApiContext
from api.envelope import fail
from api.errors import ApiError

log = logging.getLogger("ticketbot.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure in the loonflow envelope; never a stack trace in a response."""
    try:
        return await handler(request)
    except ApiError as exc:
        log.info("api request refused", extra={"path": request.path, "status": exc.status, "why": exc.msg})
        return fail(request, exc.msg, exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        msg = exc.reason if exc.status != 413 else "request body is too large"
        return fail(request, msg, exc.status)
    except Exception:
        log.exception("api request failed", extra={"path": request.path, "method": request.method})
        return fail(request, "internal error; the server log has the details", 500)


def build(ctx: ApiContext) -> web.Application:
    """The /api/v1.0 sub-application: envelope and auth middlewares, then every route."""
    from api.auth import auth_middleware
    from api.loonflow import deliveries, tickets_read, tickets_write, urge, workflows

    sub = web.Application(
        middlewares=[envelope_middleware, auth_middleware], client_max_size=ctx.max_body_bytes
    )
    sub[API_CONTEXT] = ctx
    tickets_read.add_routes(sub.router)
    tickets_write.add_routes(sub.router)
    workflows.add_routes(sub.router)
    urge.add_routes(sub.router)
    deliveries.add_routes(sub.router)
    return sub
