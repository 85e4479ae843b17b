"""The scheduled DingTalk directory sync (`TICKETBOT_DINGTALK_ORG_SYNC_MINUTES`).

`make_org_sync_job` makes the coroutine function one run is (bot/org_sync_job.py, shared with
WeCom): a `sync_org` exactly as `ticketbot org sync --from dingtalk` publishes (same mapping, same
merging by TICKETBOT_ORG_PERSON_KEY, same safety valves, never `force`), then the app's cached
directory is invalidated. Each run logs one line on `ticketbot.dingtalk.org_sync`:

- INFO "DingTalk directory synced": the counts (see bot/org_sync_job.py) and duration_ms;
- ERROR "DingTalk directory sync failed: directory unchanged" when DingTalk refuses or cannot be
  reached (code: DingTalk's code, error: what DingTalk said and what to do; never the secret or
  the access token);
- ERROR "DingTalk directory sync refused: directory unchanged" when a safety valve holds.

Each run opens its own HTTP session and DingTalk client (one token per run, nothing to close when
the app stops). `schedule_dingtalk_org_sync` is the one call the composition root makes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta

import aiohttp

from bot.dingtalk.client import DingTalkClient, DingTalkError
from bot.dingtalk.org_sync import PLATFORM, client_for, missing_settings, sync_org
from bot.org_sync import SyncReport
from bot.org_sync_job import FIRST_RUN_DELAY, make_sync_job, schedule_sync
from bot.scheduler import Jobs
from config.settings import Settings
from core.ports import Clock
from store.db import Database
from store.directory import SqlDirectory

__all__ = [
    "FIRST_RUN_DELAY",
    "JOB_NAME",
    "dingtalk_client_factory",
    "make_org_sync_job",
    "schedule_dingtalk_org_sync",
]

JOB_NAME = "dingtalk-org-sync"

ClientFactory = Callable[[], AbstractAsyncContextManager[DingTalkClient]]


def dingtalk_client_factory(settings: Settings, clock: Clock) -> ClientFactory:
    """A fresh aiohttp session and DingTalk client per run, closed when the run ends."""

    @asynccontextmanager
    async def open_client() -> AsyncIterator[DingTalkClient]:
        async with aiohttp.ClientSession() as session:
            yield client_for(session, settings, clock)

    return open_client


def _error_fields(exc: Exception) -> Mapping[str, object]:
    return {"code": exc.code} if isinstance(exc, DingTalkError) else {}


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
        errors=(DingTalkError,),
        error_fields=_error_fields,
        directory=directory,
        clock=clock,
    )


def schedule_dingtalk_org_sync(
    jobs: Jobs,
    settings: Settings,
    db: Database,
    directory: SqlDirectory | None = None,
    *,
    first_run_delay: timedelta = FIRST_RUN_DELAY,
    open_client: ClientFactory | None = None,
) -> bool:
    """Add the DingTalk directory sync to `jobs` every `settings.dingtalk_org_sync_minutes` minutes,
    first `first_run_delay` from now (by `jobs.clock`). False (nothing scheduled) when the setting
    is 0, or, with a warning, when the app key or secret is missing (load_settings refuses that
    already)."""
    return schedule_sync(
        jobs,
        PLATFORM,
        JOB_NAME,
        settings.dingtalk_org_sync_minutes,
        missing_settings(settings),
        lambda: make_org_sync_job(
            db,
            open_client or dingtalk_client_factory(settings, jobs.clock),
            directory=directory,
            clock=jobs.clock,
            person_key=settings.org_person_key,
        ),
        first_run_delay=first_run_delay,
    )
