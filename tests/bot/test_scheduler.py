"""bot.scheduler.Jobs: the options each interval job gets, failures logged (never raised, no stack,
no secrets), start / shutdown / drain, and the aiohttp lifespan. No test waits on real time: runs
are made by calling the registered function, as the scheduler does."""

from __future__ import annotations

import asyncio
import inspect
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from apscheduler.triggers.interval import IntervalTrigger

from bot.scheduler import MAX_ERROR_CHARS, Jobs, error_summary
from tests.fakes import FakeClock

SECRET = "db-password-DO-NOT-LOG"


def registered(jobs: Jobs, name: str) -> Any:
    job = jobs.job(name)
    assert job.id == name and job.name == name
    return job


def test_an_interval_job_gets_its_trigger_and_options() -> None:
    clock = FakeClock()
    jobs = Jobs(clock=clock)
    calls: list[str] = []

    async def work() -> None:
        calls.append("ran")

    first = clock.now() + timedelta(seconds=30)
    jobs.add_interval("sync", work, 15, first_run_at=first)
    job = registered(jobs, "sync")
    assert isinstance(job.trigger, IntervalTrigger)
    assert job.trigger.interval == timedelta(minutes=15)
    assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 15 * 60)
    assert job.next_run_time == first
    assert inspect.iscoroutinefunction(job.func)  # APScheduler awaits it on the loop, not in a thread
    assert job.func is jobs._funcs["sync"]  # what `run("sync")` calls
    assert jobs.names == frozenset({"sync"})
    assert calls == []  # registering runs nothing


def test_misfire_grace_and_a_first_run_in_another_timezone() -> None:
    jobs = Jobs(clock=FakeClock())

    async def work() -> None:
        return None

    tokyo = datetime(2026, 1, 2, 18, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    jobs.add_interval("a", work, 60, first_run_at=tokyo, misfire_grace_seconds=120)
    job = registered(jobs, "a")
    assert job.misfire_grace_time == 120
    assert job.next_run_time == datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
    jobs.add_interval("b", work, 5)  # no first_run_at: APScheduler computes it at start
    assert registered(jobs, "b").trigger.interval == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("name", "minutes", "first", "message"),
    [
        ("taken", 5, None, "already taken"),
        ("", 5, None, "empty"),
        ("zero", 0, None, "at least one minute"),
        ("negative", -3, None, "at least one minute"),
        ("naive", 5, datetime(2026, 1, 1, 12, 0), "timezone-aware"),
    ],
)
def test_bad_jobs_are_refused(name: str, minutes: int, first: datetime | None, message: str) -> None:
    jobs = Jobs(clock=FakeClock())

    async def work() -> None:
        return None

    jobs.add_interval("taken", work, 5)
    with pytest.raises(ValueError, match=message):
        jobs.add_interval(name, work, minutes, first_run_at=first)
    assert jobs.names == frozenset({"taken"})


def test_an_unknown_job_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        Jobs().job("nope")


async def test_a_failing_run_is_logged_with_the_job_name_without_stack_or_secret_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    jobs = Jobs(clock=FakeClock())
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError(f"connection refused\n[SQL: SELECT 1]\n[parameters: ('{SECRET}',)]")

    jobs.add_interval("flaky", flaky, 10)
    caplog.set_level(logging.DEBUG, logger="ticketbot.scheduler")
    await registered(jobs, "flaky").func()  # exactly what the scheduler awaits
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "ticketbot.scheduler" and record.levelno == logging.ERROR
    assert record.getMessage() == "scheduled job failed"
    assert record.__dict__["job"] == "flaky"
    assert record.__dict__["error"] == "RuntimeError: connection refused"
    assert record.exc_info is None and record.stack_info is None
    assert SECRET not in caplog.text

    caplog.clear()
    await jobs.run("flaky")  # the next run happens as usual
    assert runs == [0, 1] and not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_error_summary_is_one_bounded_line() -> None:
    assert error_summary(ValueError("")) == "ValueError"
    assert error_summary(KeyError("x")) == "KeyError: 'x'"
    long = error_summary(RuntimeError("y" * 1000 + "\nsecond line"))
    assert len(long) == MAX_ERROR_CHARS and long.endswith("...") and "second" not in long


async def test_start_shutdown_is_idempotent_and_final() -> None:
    jobs = Jobs(clock=FakeClock())

    async def work() -> None:
        return None

    jobs.add_interval("w", work, 1)
    assert not jobs.running
    jobs.start()
    jobs.start()  # a second start does nothing
    assert jobs.running and jobs._scheduler.running
    jobs.shutdown()
    jobs.shutdown()  # idempotent, never waits
    await jobs.drain()
    assert not jobs.running and not jobs._scheduler.running
    jobs.shutdown()  # still fine after the scheduler stopped
    with pytest.raises(RuntimeError, match="shut down"):
        jobs.start()
    with pytest.raises(RuntimeError, match="shut down"):
        jobs.add_interval("later", work, 1)
    Jobs().shutdown()  # never started: nothing to stop


def test_start_needs_the_running_loop() -> None:
    jobs = Jobs()
    with pytest.raises(RuntimeError):
        jobs.start()
    assert not jobs.running


async def test_shutdown_cancels_a_run_in_flight_and_drain_awaits_it() -> None:
    jobs = Jobs(clock=FakeClock())
    entered, never = asyncio.Event(), asyncio.Event()
    ended: list[str] = []

    async def slow() -> None:
        entered.set()
        try:
            await never.wait()
        finally:
            ended.append("cleaned up")

    jobs.add_interval("slow", slow, 1)
    jobs.start()
    run = asyncio.create_task(jobs.run("slow"))
    await entered.wait()
    jobs.shutdown()
    await jobs.drain()
    assert ended == ["cleaned up"] and run.done() and run.cancelled()
    await jobs.run("slow")  # a run after shutdown does nothing
    assert ended == ["cleaned up"]


async def test_the_scheduler_itself_runs_a_due_job_on_the_loop() -> None:
    """APScheduler's own timer: a job due now runs on the next loop iterations (the wait_for timeout
    is a guard against a hang, not a wait for time to pass)."""
    jobs = Jobs()
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()

    jobs.add_interval("due", work, 60, first_run_at=datetime.now(UTC))
    jobs.start()
    try:
        await asyncio.wait_for(ran.wait(), timeout=10)
        assert registered(jobs, "due").next_run_time > datetime.now(UTC) + timedelta(minutes=59)
    finally:
        jobs.shutdown()
        await jobs.drain()


async def test_lifespan_starts_and_stops_with_the_app(aiohttp_client: Any) -> None:
    jobs = Jobs(clock=FakeClock())
    seen: list[bool] = []

    async def work() -> None:
        return None

    async def probe(_: web.Request) -> web.Response:
        seen.append(jobs.running)
        return web.Response(text="ok")

    jobs.add_interval("w", work, 30)
    app = web.Application()
    app.router.add_get("/", probe)
    app.cleanup_ctx.append(jobs.lifespan)
    client = await aiohttp_client(app)
    assert (await client.get("/")).status == 200
    await client.close()
    assert seen == [True] and not jobs.running and not jobs._scheduler.running
