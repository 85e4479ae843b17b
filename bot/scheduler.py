"""Periodic jobs: a small wrapper around APScheduler 3.x's `AsyncIOScheduler`, owned by the app.

- `add_interval(name, coro_fn, minutes, first_run_at=...)` runs `await coro_fn()` every `minutes`:
  at most one run of a job at a time (`max_instances=1`; a run still going when the next is due
  makes APScheduler skip that one with a warning), missed runs collapsed into one (`coalesce`), and
  a run late by less than `misfire_grace_seconds` (default: one interval) still happens. Without
  `first_run_at` the first run is one interval after `start()`.
- A failing run never reaches APScheduler: it is logged at ERROR as "scheduled job failed" with
  `job` (the name) and `error` (the exception's type and the first line of its message, at most
  300 characters; no stack trace, and nothing of the job's arguments or closure). The next run
  happens as scheduled.
- The scheduler works in UTC and takes the time only from its caller (`first_run_at`, the injected
  `clock` for callers that compute one) and from APScheduler's own loop timer. Tests need no sleeps:
  `job(name).func` (or `run(name)`) is the exact coroutine function the scheduler calls.
- `start()` needs the running event loop. `shutdown()` never waits and may be called any number of
  times: it stops the timer and cancels runs in flight; `drain()` then awaits them (their
  transactions roll back). `lifespan` does start / shutdown / drain as an aiohttp `cleanup_ctx`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.clock import SystemClock
from core.ports import Clock

log = logging.getLogger("ticketbot.scheduler")

JobFunction = Callable[[], Awaitable[None]]
MAX_ERROR_CHARS = 300


def error_summary(exc: BaseException) -> str:
    """`Type: first line of the message`, at most MAX_ERROR_CHARS characters (a SQLAlchemy error's
    further lines carry the statement and its parameters)."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


class Jobs:
    """The app's periodic jobs (see the module docstring)."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._funcs: dict[str, JobFunction] = {}  # name -> the function APScheduler calls
        self._running: set[asyncio.Task[Any]] = set()
        self._started = False
        self._stopped = False

    @property
    def running(self) -> bool:
        """Started and not shut down."""
        return self._started and not self._stopped

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._funcs)

    def add_interval(
        self,
        name: str,
        coro_fn: JobFunction,
        minutes: int,
        *,
        seconds: int = 0,
        first_run_at: datetime | None = None,
        misfire_grace_seconds: int | None = None,
    ) -> None:
        """Run `await coro_fn()` every `minutes` (plus `seconds`; `minutes=0, seconds=15` runs it
        every 15 s) under `name` (unique), first at `first_run_at` (timezone-aware) or one interval
        after start."""
        if not name or name in self._funcs:
            raise ValueError(f"job name {name!r} is empty or already taken")
        if seconds < 0 or (minutes < 1 and not (minutes == 0 and seconds >= 1)):
            raise ValueError(f"job {name!r}: the interval must be at least one minute, not {minutes}")
        if first_run_at is not None and first_run_at.tzinfo is None:
            raise ValueError(f"job {name!r}: first_run_at must be timezone-aware")
        if self._stopped:
            raise RuntimeError("the jobs were shut down")

        async def run() -> None:
            await self._run(name, coro_fn)

        run.__qualname__ = run.__name__ = f"job_{name}"
        options: dict[str, Any] = {}
        if first_run_at is not None:
            options["next_run_time"] = first_run_at.astimezone(UTC)
        self._scheduler.add_job(
            run,
            IntervalTrigger(minutes=minutes, seconds=seconds, timezone=UTC),
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=(
                misfire_grace_seconds if misfire_grace_seconds is not None else minutes * 60 + seconds
            ),
            **options,
        )
        self._funcs[name] = run

    def job(self, name: str) -> Any:
        """The APScheduler `Job` (its `func`, `trigger`, `max_instances`, `coalesce`,
        `misfire_grace_time`, `next_run_time`); KeyError if there is none."""
        found = self._scheduler.get_job(name)
        if found is None:
            raise KeyError(name)
        return found

    async def run(self, name: str) -> None:
        """One run of job `name` now, exactly as the scheduler runs it (failures logged, not raised;
        nothing after shutdown)."""
        await self._funcs[name]()

    def start(self) -> None:
        """Start the timer on the running event loop (a second call does nothing)."""
        if self._stopped:
            raise RuntimeError("the jobs were shut down")
        if self._started:
            return
        asyncio.get_running_loop()  # RuntimeError outside a loop, before APScheduler half-starts
        self._scheduler.start()
        self._started = True
        log.info("scheduler started", extra={"jobs": ",".join(sorted(self._funcs)) or "-"})

    def shutdown(self) -> None:
        """Stop scheduling and cancel runs in flight, without waiting (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._running:
            task.cancel()
        if not self._started:
            return
        # takes effect on the loop's next iteration; already stopped, or its loop is closed: nothing to do
        with contextlib.suppress(SchedulerNotRunningError, RuntimeError):
            self._scheduler.shutdown(wait=False)
        log.info("scheduler stopped")

    async def drain(self) -> None:
        """Await the runs `shutdown()` cancelled (and let APScheduler's own shutdown happen)."""
        await asyncio.sleep(0)  # one loop iteration: APScheduler's deferred shutdown runs
        running = [t for t in self._running if t is not asyncio.current_task()]
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        """For `app.cleanup_ctx.append(jobs.lifespan)`: started with the app, stopped and drained
        before the app's on_cleanup handlers (e.g. closing the database) run."""
        self.start()
        try:
            yield
        finally:
            self.shutdown()
            await self.drain()

    async def _run(self, name: str, coro_fn: JobFunction) -> None:
        if self._stopped:
            return
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await coro_fn()
        except Exception as exc:
            log.error("scheduled job failed", extra={"job": name, "error": error_summary(exc)})
        finally:
            if task is not None:
                self._running.discard(task)
