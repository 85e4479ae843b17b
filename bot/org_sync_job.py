"""The scheduled directory sync of a chat platform, platform-neutral: `make_sync_job` makes the
coroutine function one run is, `schedule_sync` adds it to `bot.scheduler.Jobs`. The adapters
(`bot.wecom.org_sync_job`, `bot.dingtalk.org_sync_job`) say how to open their client and which of
their errors mean "the platform refused".

One run is a `bot.org_sync.sync` exactly as `ticketbot org sync --from <platform>` publishes (same
mapping, same merging, same safety valves, never `force`); then the app's cached directory is
invalidated so the change is seen at once (always, also when this process changed nothing:
another process or the CLI may have). Each run logs one line on `ticketbot.<source>.org_sync`:

- INFO "<Label> directory synced": departments, users, inactive, added, updated, unchanged,
  deactivated (and the first names deactivated), removed_departments, merged, linked, unlinked,
  handed_over, taken_over, ambiguous, duration_ms;
- ERROR "<Label> directory sync failed: directory unchanged" when the platform refuses or cannot be
  reached (the adapter's error code field, error: what the platform said and what to do; never the
  secret or the access token);
- ERROR "<Label> directory sync refused: directory unchanged" when a safety valve holds (no member
  at all; more than half of the platform's active users would go: deactivating, active, missing,
  disabled) or a department id belongs to the config source.

Nothing is written in the two ERROR cases. Anything else (the database is down) propagates to
`bot.scheduler.Jobs`, which logs it with the job name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from bot.clock import SystemClock
from bot.org_sync import MassDeactivationRefused, OrgSyncError, Platform, SyncReport
from bot.scheduler import Jobs
from core.ports import Clock
from store.directory import SqlDirectory

FIRST_RUN_DELAY = timedelta(seconds=30)  # the first run waits until the app has started serving
NAMES_LOGGED = 20


def _ms(clock: Clock, since: datetime) -> int:
    return int((clock.now() - since).total_seconds() * 1000)


def make_sync_job(
    platform: Platform,
    job_name: str,
    run: Callable[[], Awaitable[SyncReport]],
    *,
    errors: tuple[type[Exception], ...],
    error_fields: Callable[[Exception], Mapping[str, object]],
    directory: SqlDirectory | None = None,
    clock: Clock | None = None,
) -> Callable[[], Awaitable[None]]:
    """One scheduled sync per call (see the module docstring): `run` syncs; an exception of
    `errors` is the platform refusing, logged with `error_fields(exc)`."""
    now = clock or SystemClock()
    log = platform.log
    label = platform.label

    async def sync_directory() -> None:
        started = now.now()
        try:
            report = await run()
        except errors as exc:
            log.error(
                f"{label} directory sync failed: directory unchanged",
                extra={
                    "job": job_name,
                    **error_fields(exc),
                    "error": str(exc),
                    "duration_ms": _ms(now, started),
                },
            )
            return
        except MassDeactivationRefused as exc:
            log.error(
                f"{label} directory sync refused: directory unchanged",
                extra={
                    "job": job_name,
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
                f"{label} directory sync refused: directory unchanged",
                extra={"job": job_name, "error": str(exc), "duration_ms": _ms(now, started)},
            )
            return
        if directory is not None:
            directory.invalidate()
        extra: dict[str, object] = {
            "job": job_name,
            "departments": report.departments,
            "users": report.users,
            "inactive": report.inactive,
            "added": len(report.added),
            "updated": len(report.updated),
            "unchanged": report.unchanged,
            "deactivated": len(report.deactivated),
            "removed_departments": len(report.removed_departments),
            "merged": len(report.merged),
            "linked": len(report.linked),
            "unlinked": len(report.unlinked),
            "handed_over": len(report.handed_over),
            "taken_over": len(report.taken_over),
            "ambiguous": len(report.ambiguous),
            "duration_ms": _ms(now, started),
        }
        if report.deactivated:
            extra["deactivated_users"] = ",".join(report.deactivated[:NAMES_LOGGED]) + (
                ",..." if len(report.deactivated) > NAMES_LOGGED else ""
            )
        log.info(f"{label} directory synced", extra=extra)

    sync_directory.__qualname__ = sync_directory.__name__ = f"sync_{platform.source}_directory"
    return sync_directory


def schedule_sync(
    jobs: Jobs,
    platform: Platform,
    job_name: str,
    minutes: int,
    missing: list[str],
    make_job: Callable[[], Callable[[], Awaitable[None]]],
    *,
    first_run_delay: timedelta = FIRST_RUN_DELAY,
) -> bool:
    """Add `make_job()` to `jobs` every `minutes` minutes, first `first_run_delay` from now (by
    `jobs.clock`). False (nothing scheduled) when `minutes` is 0, or, with a warning, when settings
    are `missing` (load_settings refuses that already)."""
    log = platform.log
    if minutes <= 0:
        return False
    if missing:
        log.warning(
            f"{platform.label} directory sync not scheduled: settings missing",
            extra={"missing": ", ".join(missing)},
        )
        return False
    first_run_at = jobs.clock.now() + first_run_delay
    jobs.add_interval(job_name, make_job(), minutes, first_run_at=first_run_at)
    log.info(
        f"{platform.label} directory sync scheduled",
        extra={"every_minutes": minutes, "first_run_at": first_run_at.isoformat(timespec="seconds")},
    )
    return True
