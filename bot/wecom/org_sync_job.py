"""The scheduled WeCom directory sync (`TICKETBOT_WECOM_ORG_SYNC_MINUTES`).

`make_org_sync_job` makes the coroutine function one run is: a `sync_org` exactly as
`ticketbot org sync --from wecom` publishes (same mapping, same safety valves, never `force`), then
the app's cached directory is invalidated so the change is seen at once (always, also when this
process changed nothing: another process or the CLI may have). Each run logs one line:

- INFO "WeCom directory synced": departments, users, inactive, added, updated, unchanged,
  deactivated (and the first names deactivated), removed_departments, duration_ms;
- ERROR "WeCom directory sync failed: directory unchanged" when WeCom refuses or cannot be reached
  (errcode, error: what WeCom said and what to do; never the secret or the access token);
- ERROR "WeCom directory sync refused: directory unchanged" when a safety valve holds (no member
  at all; more than half of the active WeCom users would be deactivated: deactivating, active,
  missing, disabled) or a department id belongs to another source.

Nothing is written in the two ERROR cases. Anything else (the database is down) propagates to
`bot.scheduler.Jobs`, which logs it with the job name.

Each run opens its own HTTP session and WeCom client (one gettoken per run, nothing to close when
the app stops). `schedule_org_sync` is the one call the composition root makes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta

import aiohttp

from bot.clock import SystemClock
from bot.scheduler import Jobs
from bot.wecom.client import WeComClient, WeComError
from bot.wecom.org_sync import MassDeactivationRefused, OrgSyncError, missing_settings, sync_org
from config.settings import Settings
from core.ports import Clock
from store.db import Database
from store.directory import SqlDirectory

log = logging.getLogger("ticketbot.wecom.org_sync")

JOB_NAME = "wecom-org-sync"
FIRST_RUN_DELAY = timedelta(seconds=30)  # the first run waits until the app has started serving
NAMES_LOGGED = 20

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


def _ms(clock: Clock, since: datetime) -> int:
    return int((clock.now() - since).total_seconds() * 1000)


def make_org_sync_job(
    db: Database,
    open_client: ClientFactory,
    *,
    directory: SqlDirectory | None = None,
    clock: Clock | None = None,
) -> Callable[[], Awaitable[None]]:
    """One scheduled sync per call (see the module docstring); `directory` is invalidated after it."""
    now = clock or SystemClock()

    async def sync_wecom_directory() -> None:
        started = now.now()
        try:
            async with open_client() as client:
                report = await sync_org(db, client)
        except WeComError as exc:
            log.error(
                "WeCom directory sync failed: directory unchanged",
                extra={
                    "job": JOB_NAME,
                    "errcode": exc.errcode,
                    "error": str(exc),
                    "duration_ms": _ms(now, started),
                },
            )
            return
        except MassDeactivationRefused as exc:
            log.error(
                "WeCom directory sync refused: directory unchanged",
                extra={
                    "job": JOB_NAME,
                    "deactivating": exc.deactivating,
                    "active": exc.active,
                    "missing": exc.missing,
                    "disabled": exc.disabled,
                    "error": str(exc),
                    "duration_ms": _ms(now, started),
                },
            )
            return
        except OrgSyncError as exc:
            log.error(
                "WeCom directory sync refused: directory unchanged",
                extra={"job": JOB_NAME, "error": str(exc), "duration_ms": _ms(now, started)},
            )
            return
        if directory is not None:
            directory.invalidate()
        extra: dict[str, object] = {
            "job": JOB_NAME,
            "departments": report.departments,
            "users": report.users,
            "inactive": report.inactive,
            "added": len(report.added),
            "updated": len(report.updated),
            "unchanged": report.unchanged,
            "deactivated": len(report.deactivated),
            "removed_departments": len(report.removed_departments),
            "duration_ms": _ms(now, started),
        }
        if report.deactivated:
            extra["deactivated_users"] = ",".join(report.deactivated[:NAMES_LOGGED]) + (
                ",..." if len(report.deactivated) > NAMES_LOGGED else ""
            )
        log.info("WeCom directory synced", extra=extra)

    return sync_wecom_directory


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
    minutes = settings.wecom_org_sync_minutes
    if minutes <= 0:
        return False
    missing = missing_settings(settings)
    if missing:
        log.warning(
            "WeCom directory sync not scheduled: settings missing", extra={"missing": ", ".join(missing)}
        )
        return False
    job = make_org_sync_job(
        db,
        open_client or wecom_client_factory(settings, jobs.clock),
        directory=directory,
        clock=jobs.clock,
    )
    first_run_at = jobs.clock.now() + first_run_delay
    jobs.add_interval(JOB_NAME, job, minutes, first_run_at=first_run_at)
    log.info(
        "WeCom directory sync scheduled",
        extra={"every_minutes": minutes, "first_run_at": first_run_at.isoformat(timespec="seconds")},
    )
    return True
