"""The composition root: the ONE place that wires config + store + core (+ api + bot later)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from api.context import ApiContext
from api.loonflow import build as build_loonflow
from api.openapi import add_openapi_route
from bot import workorder_wiring
from bot.clock import SystemClock
from bot.due_work import DueWorkRunner
from bot.hooks.caller import HookCaller
from bot.http import error_middleware
from bot.notify.notifier import Notifier, worker_id
from bot.notify.ports import Delivery, OutboxEvent, Sender
from bot.notify.urge import ChatUrger
from bot.page.links import LinkSigner
from bot.scheduler import Jobs
from bot.webhooks.sender import WebhookSender
from bot.webhooks.subscriptions import webhook_routes, webhook_targets
from config.apps import ApiApp
from config.errors import ConfigError
from config.loader import LoadedConfig, load_config
from config.settings import Settings, redact_url
from config.workflows import load_workflow_source
from core.catalog import Catalog
from core.ports import Clock, TicketQueries, Urger
from core.service import TicketService
from core.workflow import Workflow
from store.db import Database
from store.deliveries import SqlDeliveries
from store.directory import SqlDirectory, replace_org
from store.hooks import SqlHookCalls
from store.migrate import upgrade_async
from store.nonces import SqlNonceStore
from store.queries import SqlTicketQueries
from store.tickets import SqlTicketStore
from store.webhooks import SqlWebhookCalls
from store.workflows import load_versions, record_versions

if TYPE_CHECKING:
    from bot.dingtalk.client import DingTalkClient
    from bot.dingtalk.routes import DingTalkCallbacks
    from bot.handlers.conversation import Conversation
    from bot.wecom.callback import InboundEvent
    from bot.wecom.client import WeComClient
    from bot.wecom.routes import WeComCallbacks

log = logging.getLogger("ticketbot.app")


class Changes:
    """Who wants to know that a ticket changed (the notifier): the service calls `fire` after
    each commit. Listeners must be quick and must not raise."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[int], None]] = []

    def fire(self, ticket_id: int) -> None:
        for listener in self.listeners:
            listener(ticket_id)


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    config: LoadedConfig
    db: Database
    catalog: Catalog
    directory: SqlDirectory
    service: TicketService
    changes: Changes


SETTINGS = web.AppKey("settings", Settings)
RUNTIME = web.AppKey("runtime", Runtime)
NOTIFIER = web.AppKey("notifier", Notifier)
HOOKS = web.AppKey("hooks", HookCaller)
WEBHOOKS = web.AppKey("webhooks", WebhookSender)
JOBS = web.AppKey("jobs", Jobs)
DUE_WORK = web.AppKey("due_work", DueWorkRunner)


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


async def build_runtime(settings: Settings, *, prepare: bool = True) -> Runtime:
    """Load and validate the config, migrate the database, publish the directory and workflows.
    A worker of `serve --workers N` passes `prepare=False`: its parent did that once for all."""
    config = load_config(settings.config_dir)
    if prepare:
        await upgrade_async(settings.database_url)
    db = Database(settings.database_url)
    if prepare:
        await replace_org(db, config.org, "config")
        sources = _workflow_sources(settings.config_dir)
        await record_versions(
            db, [(wf.id, wf.version, sources.get(wf.version, "")) for wf in config.workflows]
        )
    catalog = Catalog(config.workflows, await _pinned_versions(db, config))
    directory = SqlDirectory(db)
    changes = Changes()
    service = TicketService(
        # work_order_change webhooks are recorded with each change (store.webhooks)
        SqlTicketStore(db, webhook_routes(config.apps, config.workflows, settings.wecom_corp_id)),
        catalog,
        directory,
        SystemClock(),
        rng=lambda: secrets.randbelow(2**31),
        sn_prefix=settings.sn_prefix,
        on_change=changes.fire,
        calendar=config.calendar,
    )
    log.info(
        "runtime ready",
        extra={
            "database": redact_url(settings.database_url),
            "workflows": len(config.workflows),
            "users": len(config.org.users),
        },
    )
    return Runtime(settings, config, db, catalog, directory, service, changes)


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


def _wecom_client(settings: Settings, cleanups: list[Callable[[], Awaitable[None]]]) -> WeComClient | None:
    """The WeCom API client when a secret and agent id are set (else None: nothing is sent)."""
    if not (settings.wecom_enabled and settings.wecom_secret and settings.wecom_agent_id is not None):
        return None
    from bot.wecom.client import WeComClient

    session = aiohttp.ClientSession()
    cleanups.append(session.close)
    return WeComClient(
        session,
        api_base=settings.wecom_api_base,
        corp_id=settings.wecom_corp_id,
        corp_secret=settings.wecom_secret,
        agent_id=settings.wecom_agent_id,
        clock=SystemClock(),
    )


def _wire_wecom(
    app: web.Application,
    settings: Settings,
    runtime: Runtime,
    queries: TicketQueries,
    client: WeComClient | None,
    notifier: Notifier,
    conversation: Conversation,
    on_wecom_event: Callable[[InboundEvent], Awaitable[None]] | None,
) -> WeComCallbacks:
    """The WeCom callback, inbox, chat and card clicks, imported only when WeCom is enabled (wechatpy
    and its dependencies cost ~10 MB that a deployment without WeCom need not carry)."""
    from bot.wecom.contacts import ExternalContacts
    from bot.wecom.crypto import WeComCrypto
    from bot.wecom.customers import CustomerSync
    from bot.wecom.processing import WeComChat, make_wecom_processor
    from bot.wecom.routes import add_wecom_routes, log_inbound_event
    from store.customers import SqlCustomers
    from store.inbox import SqlInbox

    on_event = on_wecom_event
    if on_event is None and client is not None:
        customers = CustomerSync(ExternalContacts(client), SqlCustomers(runtime.db), SystemClock())
        chat = WeComChat(
            conversation=conversation,
            client=client,
            directory=runtime.directory,
            service=runtime.service,
            notifier=notifier,
            clock=SystemClock(),
            on_customer_change=customers.on_event,
        )
        on_event = make_wecom_processor(chat)
    elif on_event is None:
        log.warning("WeCom secret or agent id not set: inbound messages are logged, not answered")
    callbacks = add_wecom_routes(
        app,
        crypto=WeComCrypto(settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id),
        corp_id=settings.wecom_corp_id,
        inbox=SqlInbox(runtime.db),
        on_event=on_event or log_inbound_event,
        clock=SystemClock(),
        replay_window=settings.wecom_replay_window,
    )
    log.info("WeCom callbacks enabled", extra={"corp_id": settings.wecom_corp_id, "path": "/wecom/callback"})
    return callbacks


def _dingtalk_client(
    settings: Settings, cleanups: list[Callable[[], Awaitable[None]]]
) -> DingTalkClient | None:
    """The DingTalk API client when the app key and secret are set (else None)."""
    if not settings.dingtalk_enabled:
        return None
    from bot.dingtalk.client import DingTalkClient

    session = aiohttp.ClientSession()
    cleanups.append(session.close)
    return DingTalkClient(
        session,
        api_base=settings.dingtalk_api_base,
        oapi_base=settings.dingtalk_oapi_base,
        app_key=settings.dingtalk_app_key,
        app_secret=settings.dingtalk_app_secret,
        robot_code=settings.dingtalk_robot_code,
        clock=SystemClock(),
    )


def _conversation(
    settings: Settings, runtime: Runtime, queries: TicketQueries, urger: Urger, links: LinkSigner
) -> Conversation:
    from bot.handlers.conversation import Conversation
    from store.drafts import SqlDraftStore

    return Conversation(
        runtime.service,
        queries,
        runtime.catalog,
        runtime.directory,
        settings.public_url,
        drafts=SqlDraftStore(runtime.db),
        urger=urger,
        clock=SystemClock(),
        link_for=links.link,
        linking=workorder_wiring.chat_linking(runtime.db, queries, runtime.catalog, runtime.directory),
    )


def _link_signer(settings: Settings) -> LinkSigner:
    """The signer of ticket-page links (TICKETBOT_LINK_SECRET, else a random key for this process)."""
    if settings.link_secret:
        secret = settings.link_secret.encode("utf-8")
    else:
        secret = secrets.token_bytes(32)
        log.warning(
            "TICKETBOT_LINK_SECRET is not set: ticket page links are signed with a random key and stop "
            "working when ticketbot restarts; set it to keep links valid across restarts"
        )
    return LinkSigner(secret, settings.public_url, timedelta(hours=settings.link_ttl_hours), SystemClock())


def _wire_ticket_page(
    app: web.Application,
    settings: Settings,
    runtime: Runtime,
    queries: TicketQueries,
    links: LinkSigner,
    client: WeComClient | None,
) -> None:
    """The ticket page (/tickets/{id}); with WeCom on (and its API client), a person without a
    valid link is identified through WeCom's OAuth."""
    from bot.page.oauth import PageOAuth
    from bot.page.routes import TicketPage, add_page_routes

    oauth: PageOAuth | None = None
    if settings.wecom_enabled and client is not None:
        from bot.wecom.oauth import WeComOAuth

        oauth = WeComOAuth(client, runtime.directory, oauth_base=settings.wecom_oauth_base)
    page = TicketPage(
        service=runtime.service,
        queries=queries,
        catalog=runtime.catalog,
        directory=runtime.directory,
        links=links,
        frame_ancestors=settings.frame_ancestors,
        oauth=oauth,
    )
    add_page_routes(app, page)
    log.info("ticket page enabled", extra={"path": "/tickets/{id}", "oauth": "wecom" if oauth else "off"})


def _wire_dingtalk(
    app: web.Application,
    settings: Settings,
    runtime: Runtime,
    client: DingTalkClient,
    conversation: Conversation,
    notifier: Notifier,
) -> DingTalkCallbacks:
    """The DingTalk robot, card and event callbacks, their inbox and processing."""
    from bot.dingtalk.answers import ClickAnswers
    from bot.dingtalk.crypto import DingTalkCrypto
    from bot.dingtalk.processing import DingTalkChat, make_dingtalk_processor
    from bot.dingtalk.routes import DingTalkSecrets, add_dingtalk_routes
    from store.inbox import SqlInbox

    chat = DingTalkChat(
        conversation=conversation,
        client=client,
        directory=runtime.directory,
        service=runtime.service,
        notifier=notifier,
        clock=SystemClock(),
        answers=ClickAnswers(),
    )
    crypto = None
    if settings.dingtalk_events_enabled:
        crypto = DingTalkCrypto(
            settings.dingtalk_token, settings.dingtalk_aes_key, settings.dingtalk_owner_key
        )
    callbacks = add_dingtalk_routes(
        app,
        crypto=crypto,
        secrets=DingTalkSecrets(
            settings.dingtalk_app_secret, settings.dingtalk_robot_code, settings.dingtalk_corp_id or None
        ),
        inbox=SqlInbox(runtime.db),
        on_inbound=make_dingtalk_processor(chat),
        clock=SystemClock(),
        answers=chat.answers,
    )
    if settings.dingtalk_card_template_id:
        card_url = f"{settings.public_url.rstrip('/')}/dingtalk/card"

        async def register(_: web.Application) -> None:
            try:
                await client.register_card_callback(
                    settings.dingtalk_card_callback_key, card_url, settings.dingtalk_app_secret
                )
            except Exception as exc:  # the service still runs; clicks fail until this is fixed
                log.error("DingTalk card callback not registered", extra={"url": card_url, "error": str(exc)})
            else:
                log.info("DingTalk card callback registered", extra={"url": card_url})

        app.on_startup.append(register)
    log.info(
        "DingTalk callbacks enabled",
        extra={
            "robot": "/dingtalk/robot",
            "card": "/dingtalk/card",
            "events": "/dingtalk/events" if crypto else "off",
        },
    )
    return callbacks


def _senders(
    settings: Settings, client: WeComClient | None, dingtalk: DingTalkClient | None
) -> dict[str, Sender]:
    senders: dict[str, Sender] = {}
    if client is not None and settings.wecom_agent_id is not None:
        from bot.wecom.sender import WeComSender

        senders["wecom"] = WeComSender(client, settings.wecom_agent_id)
    if dingtalk is not None:
        from bot.dingtalk.sender import DingTalkSender

        senders["dingtalk"] = DingTalkSender(
            dingtalk,
            template_id=settings.dingtalk_card_template_id,
            callback_route_key=settings.dingtalk_card_callback_key,
            agent_id=settings.dingtalk_agent_id,
        )
    return senders


def _schedule_due_work(
    jobs: Jobs, settings: Settings, runtime: Runtime, queries: TicketQueries, notifier: Notifier
) -> DueWorkRunner:
    """The "due-work" job: timer transitions, SLA reminders, urges and escalations that are due."""
    from store.due_work import SqlDueWork

    runner = DueWorkRunner(
        SqlDueWork(runtime.db),
        runtime.service,
        queries,
        runtime.catalog,
        runtime.directory,
        notifier,
        SystemClock(),
    )
    jobs.add_interval("due-work", runner.drain_quietly, 0, seconds=settings.due_work_seconds)
    log.info("due work scheduled", extra={"every_s": settings.due_work_seconds, "worker": runner.worker})
    return runner


def _open_api(api: ApiContext, runtime: Runtime, settings: Settings, links: LinkSigner) -> web.Application:
    """The work-order open API (/open-api) over the same engine, apps and signatures as /api/v1.0."""
    from api.workorder import build as build_open_api
    from api.workorder.context import WorkOrderContext, corp_number
    from store.chat_records import SqlChatRecords
    from store.customers import SqlCustomers
    from store.workorders import SqlWorkOrders

    ctx = WorkOrderContext(
        api=api,
        customers=SqlCustomers(runtime.db),
        chat_records=SqlChatRecords(runtime.db),
        work_orders=SqlWorkOrders(runtime.db),
        share_link=links.link,
        corp_id=corp_number(settings.wecom_corp_id),
    )
    return build_open_api(ctx)


async def create_app(
    settings: Settings,
    runtime: Runtime | None = None,
    *,
    on_wecom_event: Callable[[InboundEvent], Awaitable[None]] | None = None,
    senders: Mapping[str, Sender] | None = None,
    worker_index: int | None = None,
    clock: Clock | None = None,
) -> web.Application:
    """The whole service. `on_wecom_event` processes inbound WeCom messages and events (default:
    they are logged); it is used only when the settings enable WeCom. `senders` add (or replace)
    chat platforms the notifier delivers cards to, by platform name (tests, embedding).
    `worker_index`: this process is worker I of `serve --workers N` (bot/workers.py): the database
    is prepared already, and only worker 0 runs the scheduled directory and customer syncs. `clock`: the
    notifier's (and the urger's and hook caller's) clock, default the system's; tests move it."""
    runtime = runtime or await build_runtime(settings, prepare=worker_index is None)
    first_worker = worker_index in (None, 0)
    cleanups: list[Callable[[], Awaitable[None]]] = []
    queries = SqlTicketQueries(runtime.db)
    client = _wecom_client(settings, cleanups)
    dingtalk = _dingtalk_client(settings, cleanups)
    clock = clock or SystemClock()
    links = _link_signer(settings)
    notifier = Notifier(
        SqlDeliveries(runtime.db, delivery_type=Delivery, event_type=OutboxEvent),
        queries,
        runtime.catalog,
        runtime.directory,
        {**_senders(settings, client, dingtalk), **(senders or {})},
        clock,
        settings.public_url,
        link_for=links.link,
        worker=worker_id(),  # names this process on its claims of due sends and closes
    )
    urger = ChatUrger(notifier, queries, runtime.catalog, runtime.directory, clock)
    runtime.changes.listeners.append(lambda _ticket_id: notifier.kick())
    hook_calls = SqlHookCalls(runtime.db)
    hook_session = aiohttp.ClientSession()
    cleanups.append(hook_session.close)
    hooks = HookCaller(
        hook_calls,
        runtime.service,
        queries,
        runtime.catalog,
        clock,
        settings.public_url,
        session=hook_session,
    )
    runtime.changes.listeners.append(lambda _ticket_id: hooks.kick())
    webhook_session = aiohttp.ClientSession()
    cleanups.append(webhook_session.close)
    webhooks = WebhookSender(
        SqlWebhookCalls(runtime.db),
        runtime.directory,
        webhook_targets(runtime.config.apps),
        clock,
        session=webhook_session,
    )
    runtime.changes.listeners.append(lambda _ticket_id: webhooks.kick())
    app = web.Application(middlewares=[error_middleware], client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[RUNTIME] = runtime
    app[NOTIFIER] = notifier
    app[HOOKS] = hooks
    app[WEBHOOKS] = webhooks
    app.router.add_get("/healthz", healthz)
    api = ApiContext(
        service=runtime.service,
        queries=queries,
        catalog=runtime.catalog,
        directory=runtime.directory,
        apps={a.name: with_granted_workflows(a, runtime.config.workflows) for a in runtime.config.apps},
        clock=SystemClock(),
        nonces=SqlNonceStore(runtime.db),
        strict_status=settings.api_strict_status,
        urger=urger,
        hooks=hook_calls,
        deliveries=SqlDeliveries(runtime.db, delivery_type=Delivery, event_type=OutboxEvent),
    )
    app.add_subapp("/api/v1.0", build_loonflow(api))
    app.add_subapp("/open-api", _open_api(api, runtime, settings, links))
    add_openapi_route(app)
    _wire_ticket_page(app, settings, runtime, queries, links, client)
    jobs = Jobs()
    app[JOBS] = jobs
    app.cleanup_ctx.append(jobs.lifespan)  # stopped and drained before `close` disposes the database
    if settings.due_work_seconds:
        app[DUE_WORK] = _schedule_due_work(jobs, settings, runtime, queries, notifier)
    archive = workorder_wiring.chat_archive(settings, runtime.db, cleanups)  # 会话存档 pull, when set
    if archive is not None and first_worker:
        workorder_wiring.schedule_chat_archive(jobs, settings, archive)
    workorder_wiring.wire_sidebar(
        app,
        settings,
        db=runtime.db,
        service=runtime.service,
        queries=queries,
        catalog=runtime.catalog,
        directory=runtime.directory,
        links=links,
        client=client,
        archive=archive,
    )
    conversation = _conversation(settings, runtime, queries, urger, links)
    if settings.wecom_enabled:
        callbacks = _wire_wecom(
            app, settings, runtime, queries, client, notifier, conversation, on_wecom_event
        )
        jobs.add_interval("wecom-inbox", callbacks.recover_and_drain, minutes=1)
    if dingtalk is not None:
        dt = _wire_dingtalk(app, settings, runtime, dingtalk, conversation, notifier)
        jobs.add_interval("dingtalk-inbox", dt.worker.recover_and_drain, minutes=1)
    if settings.wecom_org_sync_minutes and first_worker:
        from bot.wecom.org_sync_job import schedule_org_sync

        schedule_org_sync(jobs, settings, runtime.db, runtime.directory)
    if settings.wecom_customer_sync_minutes and first_worker:
        from bot.wecom.customer_reconcile_job import schedule_customer_sync

        schedule_customer_sync(jobs, settings, runtime.db)
    if settings.dingtalk_org_sync_minutes and first_worker:
        from bot.dingtalk.org_sync_job import schedule_dingtalk_org_sync

        schedule_dingtalk_org_sync(jobs, settings, runtime.db, runtime.directory)

    async def start(_: web.Application) -> None:
        notifier.start()
        hooks.start()
        webhooks.start()

    async def close(_: web.Application) -> None:
        await notifier.stop()
        await hooks.stop()
        await webhooks.stop()
        for cleanup in cleanups:
            await cleanup()
        await runtime.db.dispose()

    app.on_startup.append(start)
    app.on_cleanup.append(close)
    return app
