"""The scheduled customer reconcile (`TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES`).

`make_customer_sync_job` makes the coroutine function one run is: a `reconcile` exactly as
`ticketbot customers sync` runs it (bot/wecom/customer_reconcile.py: same lists, same refreshes,
same safety valves). Each run logs on `ticketbot.wecom.customers`:

- INFO "WeCom customers reconciled", once per run that reached WeCom's lists: users_from,
  listed_users, failed_users, seen, stored, missing, added, updated, unchanged, deleted, refused,
  failed, duration_ms;
- ERROR "WeCom customer reconcile incomplete: nothing deleted" besides it when a list call failed
  (failed_userids, the first error), and ERROR "WeCom customer reconcile refused: nothing deleted"
  when the safety valve holds (missing, stored);
- ERROR "WeCom customer reconcile failed: nothing changed" when WeCom refuses the run itself
  (errcode, error: what WeCom said and what to do).

Never the secret or the access token. Anything else (the database is down) propagates to
`bot.scheduler.Jobs`, which logs it with the job name. Each run opens its own HTTP session and
WeCom client. `schedule_customer_sync` is the one call the composition root makes (on the first
worker only: one run per interval across worker processes).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.clock import SystemClock
from bot.scheduler import Jobs
from bot.wecom.client import WeComError
from bot.wecom.contacts import ExternalContacts
from bot.wecom.customer_reconcile import ReconcileReport, directory_staff, missing_settings, reconcile
from bot.wecom.org_sync_job import ClientFactory, wecom_client_factory
from config.settings import Settings
from core.ports import Clock
from store.customers import SqlCustomers
from store.db import Database

log = logging.getLogger("ticketbot.wecom.customers")

__all__ = ["FIRST_RUN_DELAY", "JOB_NAME", "make_customer_sync_job", "schedule_customer_sync"]

JOB_NAME = "wecom-customer-sync"
FIRST_RUN_DELAY = timedelta(seconds=60)  # after the app serves (and the directory sync's first run)
NAMES_LOGGED = 20


def _summary(report: ReconcileReport) -> dict[str, object]:
    return {
        "job": JOB_NAME,
        "users_from": report.users_from,
        "listed_users": report.listed_users,
        "failed_users": len(report.failed_users),
        "seen": report.seen,
        "stored": report.stored,
        "missing": report.missing,
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "deleted": report.deleted,
        "refused": report.refused,
        "failed": report.failed,
        "duration_ms": report.duration_ms,
    }


def make_customer_sync_job(
    db: Database, open_client: ClientFactory, *, clock: Clock | None = None
) -> Callable[[], Awaitable[None]]:
    """One scheduled reconcile per call (see the module docstring)."""
    now = clock or SystemClock()

    async def sync_wecom_customers() -> None:
        started = now.now()
        try:
            async with open_client() as client:
                report = await reconcile(
                    ExternalContacts(client),
                    SqlCustomers(db),
                    clock=now,
                    staff=lambda: directory_staff(db),
                )
        except WeComError as exc:
            log.error(
                "WeCom customer reconcile failed: nothing changed",
                extra={
                    "job": JOB_NAME,
                    "errcode": exc.errcode,
                    "error": str(exc),
                    "duration_ms": int((now.now() - started).total_seconds() * 1000),
                },
            )
            return
        if report.failed_users:
            names = report.failed_users
            log.error(
                "WeCom customer reconcile incomplete: nothing deleted",
                extra={
                    "job": JOB_NAME,
                    "failed_users": len(names),
                    "failed_userids": ",".join(names[:NAMES_LOGGED])
                    + (",..." if len(names) > NAMES_LOGGED else ""),
                    "missing": report.missing,
                    "error": report.first_error,
                },
            )
        log.info("WeCom customers reconciled", extra=_summary(report))

    return sync_wecom_customers


def schedule_customer_sync(
    jobs: Jobs,
    settings: Settings,
    db: Database,
    *,
    first_run_delay: timedelta = FIRST_RUN_DELAY,
    open_client: ClientFactory | None = None,
) -> bool:
    """Add the reconcile to `jobs` every `settings.wecom_customer_sync_minutes` minutes, first
    `first_run_delay` from now (by `jobs.clock`). False (nothing scheduled) when the setting is 0,
    or, with a warning, when the corp id or secret is missing (load_settings refuses that already)."""
    minutes = settings.wecom_customer_sync_minutes
    if minutes <= 0:
        return False
    missing = missing_settings(settings)
    if missing:
        log.warning(
            "WeCom customer reconcile not scheduled: settings missing", extra={"missing": ", ".join(missing)}
        )
        return False
    first_run_at = jobs.clock.now() + first_run_delay
    job = make_customer_sync_job(
        db, open_client or wecom_client_factory(settings, jobs.clock), clock=jobs.clock
    )
    jobs.add_interval(JOB_NAME, job, minutes, first_run_at=first_run_at)
    log.info(
        "WeCom customer reconcile scheduled",
        extra={"every_minutes": minutes, "first_run_at": first_run_at.isoformat(timespec="seconds")},
    )
    return True
