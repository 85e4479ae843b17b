"""The composition root: the ONE place that wires config + store + core (+ api + bot later)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from api.context import ApiContext
from api.loonflow import build as build_loonflow
from api.openapi import add_openapi_route
from bot.clock import SystemClock
from bot.http import error_middleware
from config.apps import ApiApp
from config.errors import ConfigError
from config.loader import LoadedConfig, load_config
from config.settings import Settings, redact_url
from config.workflows import load_workflow_source
from core.catalog import Catalog
from core.ports import TicketQueries
from core.service import TicketService
from core.workflow import Workflow
from store.db import Database
from store.directory import SqlDirectory, replace_org
from store.migrate import upgrade_async
from store.nonces import SqlNonceStore
from store.queries import SqlTicketQueries
from store.tickets import SqlTicketStore
from store.workflows import load_versions, record_versions

if TYPE_CHECKING:
    from bot.wecom.callback import InboundEvent

log = logging.getLogger("ticketbot.app")


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    config: LoadedConfig
    db: Database
    catalog: Catalog
    directory: SqlDirectory
    service: TicketService


SETTINGS = web.AppKey("settings", Settings)
RUNTIME = web.AppKey("runtime", Runtime)


def _workflow_sources(config_dir: Path) -> dict[str, str]:
    """version -> YAML text, so each workflow version a ticket may pin is kept in the database."""
    out: dict[str, str] = {}
    for path in sorted((config_dir / "workflows").glob("*.yaml")):
        raw = path.read_bytes()
        out[hashlib.sha256(raw).hexdigest()[:12]] = raw.decode("utf-8", "replace")
    return out


async def _pinned_versions(db: Database, config: LoadedConfig) -> list[Workflow]:
    """Every older workflow version recorded in the database, so tickets keep the one they pinned."""
    current = {(wf.id, wf.version) for wf in config.workflows}
    older: list[Workflow] = []
    for workflow_id, version, source in await load_versions(db):
        if (workflow_id, version) in current or not source:
            continue
        try:
            wf = load_workflow_source(f"workflow-{workflow_id}@{version}.yaml", source, config.org)
        except ConfigError as exc:
            log.warning(
                "a pinned workflow version no longer loads; its tickets use the current version",
                extra={"workflow_id": workflow_id, "version": version, "errors": "; ".join(exc.errors)[:500]},
            )
            continue
        older.append(wf)
    return older


async def build_runtime(settings: Settings) -> Runtime:
    """Load and validate the config, migrate the database, publish the directory and workflows."""
    config = load_config(settings.config_dir)
    await upgrade_async(settings.database_url)
    db = Database(settings.database_url)
    await replace_org(db, config.org, "config")
    sources = _workflow_sources(settings.config_dir)
    await record_versions(db, [(wf.id, wf.version, sources.get(wf.version, "")) for wf in config.workflows])
    catalog = Catalog(config.workflows, await _pinned_versions(db, config))
    directory = SqlDirectory(db)
    service = TicketService(
        SqlTicketStore(db),
        catalog,
        directory,
        SystemClock(),
        rng=lambda: secrets.randbelow(2**31),
        sn_prefix=settings.sn_prefix,
    )
    log.info(
        "runtime ready",
        extra={
            "database": redact_url(settings.database_url),
            "workflows": len(config.workflows),
            "users": len(config.org.users),
        },
    )
    return Runtime(settings, config, db, catalog, directory, service)


def with_granted_workflows(app: ApiApp, workflows: Sequence[Workflow]) -> ApiApp:
    """An app's workflows: those it lists plus those whose `permissions.api_apps` name it."""
    if app.workflow_ids is None:
        return app
    granted = {wf.id for wf in workflows if app.allows(wf)}
    return replace(app, workflow_ids=frozenset(app.workflow_ids | granted))


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return web.json_response(
        {"status": "ok", "database": runtime.db.dialect, "workflows": len(runtime.catalog.all())}
    )


def _wire_wecom(
    app: web.Application,
    settings: Settings,
    runtime: Runtime,
    queries: TicketQueries,
    on_wecom_event: Callable[[InboundEvent], Awaitable[None]] | None,
) -> list[Callable[[], Awaitable[None]]]:
    """The WeCom callback, inbox and chat, imported only when WeCom is enabled (wechatpy and its
    dependencies cost ~10 MB that a deployment without WeCom need not carry)."""
    from bot.handlers.conversation import Conversation
    from bot.wecom.client import WeComClient
    from bot.wecom.crypto import WeComCrypto
    from bot.wecom.processing import make_wecom_processor
    from bot.wecom.routes import add_wecom_routes, log_inbound_event
    from store.inbox import SqlInbox

    cleanups: list[Callable[[], Awaitable[None]]] = []
    on_event = on_wecom_event
    if on_event is None and settings.wecom_secret and settings.wecom_agent_id is not None:
        session = aiohttp.ClientSession()
        cleanups.append(session.close)
        client = WeComClient(
            session,
            api_base=settings.wecom_api_base,
            corp_id=settings.wecom_corp_id,
            corp_secret=settings.wecom_secret,
            agent_id=settings.wecom_agent_id,
            clock=SystemClock(),
        )
        conversation = Conversation(
            runtime.service, queries, runtime.catalog, runtime.directory, settings.public_url
        )
        on_event = make_wecom_processor(conversation, client, runtime.directory)
    elif on_event is None:
        log.warning("WeCom secret or agent id not set: inbound messages are logged, not answered")
    add_wecom_routes(
        app,
        crypto=WeComCrypto(settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id),
        corp_id=settings.wecom_corp_id,
        inbox=SqlInbox(runtime.db),
        on_event=on_event or log_inbound_event,
        clock=SystemClock(),
        replay_window=settings.wecom_replay_window,
    )
    log.info("WeCom callbacks enabled", extra={"corp_id": settings.wecom_corp_id, "path": "/wecom/callback"})
    return cleanups


async def create_app(
    settings: Settings,
    runtime: Runtime | None = None,
    *,
    on_wecom_event: Callable[[InboundEvent], Awaitable[None]] | None = None,
) -> web.Application:
    """The whole service. `on_wecom_event` processes inbound WeCom messages and events (default:
    they are logged); it is used only when the settings enable WeCom."""
    runtime = runtime or await build_runtime(settings)
    app = web.Application(middlewares=[error_middleware], client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    api = ApiContext(
        service=runtime.service,
        queries=SqlTicketQueries(runtime.db),
        catalog=runtime.catalog,
        directory=runtime.directory,
        apps={a.name: with_granted_workflows(a, runtime.config.workflows) for a in runtime.config.apps},
        clock=SystemClock(),
        nonces=SqlNonceStore(runtime.db),
        strict_status=settings.api_strict_status,
    )
    app.add_subapp("/api/v1.0", build_loonflow(api))
    add_openapi_route(app)
    cleanups: list[Callable[[], Awaitable[None]]] = []
    if settings.wecom_enabled:
        cleanups.extend(_wire_wecom(app, settings, runtime, api.queries, on_wecom_event))

    async def close(_: web.Application) -> None:
        for cleanup in cleanups:
            await cleanup()
        await runtime.db.dispose()

    app.on_cleanup.append(close)
    return app
