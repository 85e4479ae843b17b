"""The composition root's part for the work-order chat side (called from bot.app.create_app): the
关联 <order_no> linking in chat, the chat archive pull (job "chat-archive") and the work-order sidebar
(/sidebar/workorder). Here the store and the WeCom adapter meet the platform-neutral pieces."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from bot.archive_sync import JOB_NAME, ArchiveSync
from bot.clock import SystemClock
from bot.handlers.linking import Linking
from bot.page.links import LinkSigner
from bot.scheduler import Jobs
from bot.sidebar.ports import Sidebar
from bot.sidebar.routes import add_sidebar_routes
from bot.sidebar.session import SidebarSessions, derive_key
from config.settings import Settings
from core.ports import Directory, TicketQueries, WorkflowCatalog
from core.service import TicketService
from store.archive_cursors import SqlArchiveCursors
from store.chat_links import SqlChatLinks
from store.chat_records import SqlChatRecords
from store.customers import SqlCustomers
from store.db import Database
from store.workorders import SqlWorkOrders

if TYPE_CHECKING:
    from bot.wecom.client import WeComClient

log = logging.getLogger("ticketbot.app")

ARCHIVE_TIMEOUT = 5.0  # seconds for one archive fetch (the sidebar waits for a refresh)


def chat_linking(
    db: Database, queries: TicketQueries, catalog: WorkflowCatalog, directory: Directory
) -> Linking:
    """关联 <order_no> in chat: messages linked to a work order (bot.handlers.linking)."""
    return Linking(SqlChatLinks(db), SqlChatRecords(db), queries, catalog, directory, clock=SystemClock())


def chat_archive(
    settings: Settings, db: Database, cleanups: list[Callable[[], Awaitable[None]]]
) -> ArchiveSync | None:
    """The chat archive pull when TICKETBOT_CHAT_ARCHIVE_URL is set (else None)."""
    if not settings.chat_archive_url:
        return None
    from bot.wecom.archive import HttpChatArchive

    session = aiohttp.ClientSession()
    cleanups.append(session.close)
    archive = HttpChatArchive(
        session, settings.chat_archive_url, token=settings.chat_archive_token, timeout=ARCHIVE_TIMEOUT
    )
    return ArchiveSync(archive, SqlArchiveCursors(db), SqlChatRecords(db), SystemClock())


def schedule_chat_archive(jobs: Jobs, settings: Settings, sync: ArchiveSync) -> None:
    jobs.add_interval(JOB_NAME, sync.run, 0, seconds=settings.chat_archive_seconds)
    log.info("chat archive pull scheduled", extra={"every_s": settings.chat_archive_seconds})


def wire_sidebar(
    app: web.Application,
    settings: Settings,
    *,
    db: Database,
    service: TicketService,
    queries: TicketQueries,
    catalog: WorkflowCatalog,
    directory: Directory,
    links: LinkSigner,
    client: WeComClient | None,
    archive: ArchiveSync | None,
) -> None:
    """/sidebar/workorder; it answers 503 unless WeCom is on with its API client (OAuth, JS-SDK)."""
    oauth = None
    sign_page = None
    if settings.wecom_enabled and client is not None:
        from bot.wecom.jsapi import AgentConfigSigner
        from bot.wecom.oauth import WeComOAuth

        oauth = WeComOAuth(client, directory, oauth_base=settings.wecom_oauth_base)
        signer = AgentConfigSigner(client, SystemClock())

        async def sign(url: str) -> Mapping[str, object]:
            return (await signer.sign(url)).to_json()

        sign_page = sign
    clock = SystemClock()
    sidebar = Sidebar(
        service=service,
        queries=queries,
        catalog=catalog,
        directory=directory,
        customers=SqlCustomers(db),
        records=SqlChatRecords(db),
        work_orders=SqlWorkOrders(db),
        sessions=SidebarSessions(derive_key(links.secret), clock),
        clock=clock,
        public_url=settings.public_url,
        oauth=oauth,
        sign_page=sign_page,
        refresh=archive.pull if archive is not None else None,
        script_urls=settings.wecom_jssdk_urls,
        frame_ancestors=settings.frame_ancestors,
    )
    add_sidebar_routes(app, sidebar)
    log.info(
        "work-order sidebar enabled" if oauth else "work-order sidebar off (needs WeCom with its API client)",
        extra={"path": "/sidebar/workorder"},
    )
