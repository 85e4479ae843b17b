"""What the HTTP dialects are given by the composition root (bot.app)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from api.errors import ApiError
from api.ledger import DeliveryLedger
from config.apps import ApiApp
from core.hook_calls import HookCalls
from core.ports import Clock, Directory, NonceStore, TicketQueries, Urger, WorkflowCatalog
from core.service import TicketService


@dataclass(frozen=True, slots=True)
class ApiContext:
    service: TicketService
    queries: TicketQueries
    catalog: WorkflowCatalog
    directory: Directory
    apps: Mapping[str, ApiApp]
    clock: Clock
    nonces: NonceStore
    strict_status: bool = False  # answer 4xx statuses instead of loonflow's always-200
    auth_window_seconds: int = 120
    max_body_bytes: int = 1024 * 1024
    urger: Urger | None = None  # 催办 over the chat platforms; None: no platform can be reached
    deliveries: DeliveryLedger | None = None  # who was told what (the ledger route); None: not kept
    hooks: HookCalls | None = None  # hook calls made; None: hook_call_back is not matched to a call


API_CONTEXT = web.AppKey("api_context", ApiContext)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the authenticated API app and the acting user (the `username` header)."""

    app: ApiApp
    username: str

    def may_use(self, workflow_id: int) -> bool:
        ids = self.app.workflow_ids
        return ids is None or workflow_id in ids

    def refusal(self, workflow_id: int) -> str:
        return f"app '{self.app.name}' may not use workflow {workflow_id}"

    def require(self, workflow_id: int) -> None:
        """Refuse (403) a workflow the calling app may not use."""
        if not self.may_use(workflow_id):
            raise ApiError(self.refusal(workflow_id), 403)


CALLER = web.RequestKey("caller", Caller)  # set by the auth middleware


def caller(request: web.Request) -> Caller:
    try:
        return request[CALLER]
    except KeyError:  # the auth middleware guards every API route
        raise web.HTTPUnauthorized(reason="not authenticated") from None


def context(request: web.Request) -> ApiContext:
    return request.config_dict[API_CONTEXT]
