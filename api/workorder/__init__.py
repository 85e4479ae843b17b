"""The work-order open API (the vendor dialect of seed 000), mounted at /open-api by bot.app.

Every route needs the loonflow dialect's signature headers (api.workorder.auth) and answers
``{"errcode": 0, "errmsg": "ok", ...}`` or a refusal ``{"errcode": N, "errmsg": "..."}`` with a
4xx status (api.workorder.errcodes). The endpoints, code tables and examples:
docs/workorder-api.md.
"""

from __future__ import annotations

from aiohttp import web

from api.context import API_CONTEXT
from api.workorder.context import WORKORDER_CONTEXT, WorkOrderContext


def build(ctx: WorkOrderContext) -> web.Application:
    """The /open-api sub-application: envelope and auth middlewares, then every route."""
    from api.workorder import actions, creation, messages, read_routes, sharing
    from api.workorder.auth import auth_middleware
    from api.workorder.envelope import envelope_middleware

    sub = web.Application(
        middlewares=[envelope_middleware, auth_middleware], client_max_size=ctx.api.max_body_bytes
    )
    sub[API_CONTEXT] = ctx.api
    sub[WORKORDER_CONTEXT] = ctx
    read_routes.add_routes(sub.router)
    creation.add_routes(sub.router)
    actions.add_routes(sub.router)
    sharing.add_routes(sub.router)
    messages.add_routes(sub.router)
    return sub
