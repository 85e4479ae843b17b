"""The scheduled WeCom directory sync (`TICKETBOT_WECOM_ORG_SYNC_MINUTES`).

`make_org_sync_job` makes the coroutine function one run is (bot/org_sync_job.py, shared with
DingTalk): a `sync_org` exactly as `ticketbot org sync --from wecom` publishes (same mapping, same
merging by TICKETBOT_ORG_PERSON_KEY, same safety valves, never `force`), then the app's cached
directory is invalidated. Each run logs one line on `ticketbot.wecom.org_sync`:

- INFO "WeCom directory synced": departments, users, inactive, added, updated, unchanged,
  deactivated (and the first names deactivated), removed_departments, merged, linked, unlinked,
  handed_over, taken_over, ambiguous, duration_ms;
- ERROR "WeCom directory sync failed: directory unchanged" when WeCom refuses or cannot be reached
  (errcode, error: what WeCom said and what to do; never the secret or the access token);
- ERROR "WeCom directory sync refused: directory unchanged" when a safety valve holds (no member
  at all; more than half of the active WeCom users would be deactivated: deactivating, active,
  missing, disabled) or a department id belongs to the config source.

Nothing is written in the two ERROR cases. Anything else (the database is down) propagates to
`bot.scheduler.Jobs`, which logs it with the job name.

Each run opens its own HTTP session and WeCom client (one gettoken per run, nothing to close when
the app stops). `schedule_org_sync` is the one call the composition root makes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta

import aiohttp

from bot.org_sync import SyncReport
from bot.org_sync_job import FIRST_RUN_DELAY, make_sync_job, schedule_sync
from bot.scheduler import Jobs
from bot.wecom.client import WeComClient, WeComError
from bot.wecom.org_sync import PLATFORM, missing_settings, sync_org
from config.settings import Settings
from core.ports import Clock
from store.db import Database
from store.directory import SqlDirectory

__all__ = ["FIRST_RUN_DELAY", "JOB_NAME", "make_org_sync_job", "schedule_org_sync", "wecom_client_factory"]

JOB_NAME = "wecom-org-sync"

ClientFactory = Callable[[], AbstractAsyncContextManager[WeComClient]]


def wecom_client_factory(settings: Settings, clock: Clock) -> ClientFactory:
    """A fresh aiohttp session and WeCom client per run, closed when the run ends."""

    @asynccontextmanager
    async def open_client() -> AsyncIterator[WeComClient]:
        async with aiohttp.ClientSession() as session:
            yield WeComClient(
                session,
                api_base=settings.wecom_api_base,
                corp_id=settings.wecom_corp_id,
                corp_secret=settings.wecom_secret,
                agent_id=settings.wecom_agent_id or 0,
                clock=clock,
            )

    return open_client


def _error_fields(exc: Exception) -> Mapping[str, object]:
    return {"errcode": exc.errcode} if isinstance(exc, WeComError) else {}


def make_org_sync_job(
    db: Database,
    open_client: ClientFactory,
    *,
    directory: SqlDirectory | None = None,
    clock: Clock | None = None,
    person_key: str = "mobile",
) -> Callable[[], Awaitable[None]]:
    """One scheduled sync per call (see the module docstring); `directory` is invalidated after it."""

    async def run() -> SyncReport:
        async with open_client() as client:
            return await sync_org(db, client, person_key=person_key)

    return make_sync_job(
        PLATFORM,
        JOB_NAME,
        run,
        errors=(WeComError,),
        error_fields=_error_fields,
        directory=directory,
        clock=clock,
    )


def schedule_org_sync(
    jobs: Jobs,
    settings: Settings,
    db: Database,
    directory: SqlDirectory | None = None,
    *,
    first_run_delay: timedelta = FIRST_RUN_DELAY,
    open_client: ClientFactory | None = None,
) -> bool:
    """Add the WeCom directory sync to `jobs` every `settings.wecom_org_sync_minutes` minutes, first
    `first_run_delay` from now (by `jobs.clock`). False (nothing scheduled) when the setting is 0,
    or, with a warning, when the corp id or secret is missing (load_settings refuses that already)."""
    return schedule_sync(
        jobs,
        PLATFORM,
        JOB_NAME,
        settings.wecom_org_sync_minutes,
        missing_settings(settings),
        lambda: make_org_sync_job(
            db,
            open_client or wecom_client_factory(settings, jobs.clock),
            directory=directory,
            clock=jobs.clock,
            person_key=settings.org_person_key,
        ),
        first_run_delay=first_run_delay,
    )
