"""The scheduled WeCom directory sync against the emulator on 127.0.0.1, on both databases: what a
run publishes and logs, failures and refusals that leave the directory untouched, and
`schedule_org_sync` as the app calls it. Runs are made by calling the registered job function."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.scheduler import Jobs
from bot.wecom.client import WeComClient
from bot.wecom.org_sync_job import FIRST_RUN_DELAY, JOB_NAME, make_org_sync_job, schedule_org_sync
from core.org import Org, User, UserType
from emulator.wecom import WeComEmulator
from store.db import Database
from store.directory import SqlDirectory, replace_org
from tests.bot.test_org_sync import AGENT, CORP, SECRET, Env, staff_org, wecom_org
from tests.fakes import FakeClock

LOGGER = "ticketbot.wecom.org_sync"


@pytest.fixture
async def env(aiohttp_server: Any) -> AsyncIterator[Env]:
    clock = FakeClock()
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, org=wecom_org())
    server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
    async with aiohttp.ClientSession() as session:
        yield Env(emulator, server, session, clock)


def opener(env: Env) -> Any:
    @asynccontextmanager
    async def open_client() -> AsyncIterator[WeComClient]:
        yield env.client()

    return open_client


def records(
    caplog: pytest.LogCaptureFixture, level: int, logger: str = "ticketbot"
) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == level and r.name.startswith(logger)]


def no_secrets(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert SECRET not in text
    assert env.emulator.issued_tokens() and not any(t in text for t in env.emulator.issued_tokens())


async def test_a_run_publishes_invalidates_the_cache_and_logs_a_summary(
    env: Env, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ticketbot")
    await replace_org(db, Org.build([User("admin", type=UserType.SUPER_ADMIN)]), "config")
    directory = SqlDirectory(db)
    assert set((await directory.org()).users) == {"admin"}  # cached from now on
    job = make_org_sync_job(db, opener(env), directory=directory, clock=env.clock)

    await job()
    org = await directory.org()  # no manual invalidate: the job did it
    assert {n for n in org.users if org.active(n)} == {"admin", "ceo", "alice", "bob", "carol"}
    (summary,) = records(caplog, logging.INFO, LOGGER)
    assert summary.name == LOGGER and summary.getMessage() == "WeCom directory synced"
    counts = {
        k: summary.__dict__[k]
        for k in ("departments", "users", "inactive", "added", "updated", "unchanged", "deactivated")
    }
    assert counts == {
        "departments": 3,
        "users": 7,
        "inactive": 3,
        "added": 7,
        "updated": 0,
        "unchanged": 0,
        "deactivated": 0,
    }
    assert summary.__dict__["removed_departments"] == 0 and summary.__dict__["duration_ms"] == 0
    assert summary.__dict__["job"] == JOB_NAME and "deactivated_users" not in summary.__dict__

    caplog.clear()
    del env.emulator.users["alice"]
    env.emulator.users["carol"]["name"] = "卡罗尔·新"
    await job()
    (summary,) = records(caplog, logging.INFO, LOGGER)
    assert (summary.__dict__["deactivated"], summary.__dict__["updated"], summary.__dict__["added"]) == (
        1,
        1,
        0,
    )
    assert summary.__dict__["deactivated_users"] == "alice"
    org = await directory.org()
    assert not org.active("alice") and org.users["carol"].alias == "卡罗尔·新"
    no_secrets(env, caplog)


@pytest.mark.parametrize(
    ("break_it", "errcode", "says"),
    [
        (lambda e: e.forbidden_paths.add("/cgi-bin/user/list"), 48002, "可见范围"),
        (lambda e: e.fail_next(3, -1, path="/cgi-bin/department/list"), -1, "busy"),
        (lambda e: e.fail_next(1, 40001, path="/cgi-bin/gettoken"), 40001, "secret is wrong"),
    ],
)
async def test_a_wecom_error_is_logged_and_the_directory_stays(
    env: Env, db: Database, caplog: pytest.LogCaptureFixture, break_it: Any, errcode: int, says: str
) -> None:
    directory = SqlDirectory(db)
    job = make_org_sync_job(db, opener(env), directory=directory, clock=env.clock)
    await job()
    before = await directory.org()

    caplog.set_level(logging.INFO, logger="ticketbot")
    caplog.clear()
    env.emulator.users.clear()  # whatever WeCom would have said, nothing of it may land
    break_it(env.emulator)
    await job()  # logged, never raised
    (error,) = records(caplog, logging.ERROR)
    assert error.name == LOGGER and error.getMessage() == "WeCom directory sync failed: directory unchanged"
    assert error.__dict__["job"] == JOB_NAME and error.__dict__["errcode"] == errcode
    assert says in error.__dict__["error"] and error.exc_info is None
    assert not records(caplog, logging.INFO, LOGGER)
    directory.invalidate()
    assert await directory.org() == before
    no_secrets(env, caplog)


async def test_a_mass_deactivation_is_refused_and_logged_with_the_counts(
    env: Env, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    env.emulator.users = {u["userid"]: u for u in staff_org(9)["users"]}
    directory = SqlDirectory(db)
    job = make_org_sync_job(db, opener(env), directory=directory, clock=env.clock)
    await job()
    everyone = set((await directory.org()).users)

    caplog.set_level(logging.INFO, logger="ticketbot")
    env.emulator.users = {k: v for k, v in env.emulator.users.items() if k in ("u01", "u02", "u03", "u04")}
    env.emulator.users["u04"]["status"] = 5  # exited
    await job()
    (error,) = records(caplog, logging.ERROR)
    assert error.getMessage() == "WeCom directory sync refused: directory unchanged"
    assert {k: error.__dict__[k] for k in ("deactivating", "active", "missing", "disabled")} == {
        "deactivating": 6,
        "active": 9,
        "missing": 5,
        "disabled": 1,
    }
    assert "6 of the 9 active WeCom users" in error.__dict__["error"]
    org = await SqlDirectory(db).org()
    assert {n for n in org.users if org.active(n)} == everyone  # nothing changed


async def test_an_empty_answer_is_refused_and_logged(
    env: Env, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    job = make_org_sync_job(db, opener(env), clock=env.clock)
    await job()
    caplog.set_level(logging.INFO, logger="ticketbot")
    env.emulator.users.clear()
    await job()
    (error,) = records(caplog, logging.ERROR)
    assert error.getMessage() == "WeCom directory sync refused: directory unchanged"
    assert "no members" in error.__dict__["error"]
    assert (await SqlDirectory(db).org()).active("alice")


async def test_schedule_org_sync_adds_the_job_and_runs_over_the_wire(
    env: Env, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(database_url)
    try:
        directory = SqlDirectory(db)
        jobs = Jobs(clock=env.clock)
        settings = env.settings(database_url, wecom_org_sync_minutes=90)
        caplog.set_level(logging.INFO, logger="ticketbot")
        assert schedule_org_sync(jobs, settings, db, directory)
        job = jobs.job(JOB_NAME)
        assert job.trigger.interval == timedelta(minutes=90)
        assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 90 * 60)
        assert job.next_run_time == env.clock.now() + FIRST_RUN_DELAY

        await jobs.run(JOB_NAME)  # the production client factory, against the emulator
        assert len((await directory.org()).users) == 7
        assert env.emulator.records.calls.count("/cgi-bin/gettoken") == 1
        await jobs.run(JOB_NAME)  # each run opens its own session and client
        assert env.emulator.records.calls.count("/cgi-bin/gettoken") == 2
        messages = [r.getMessage() for r in caplog.records if r.name.startswith("ticketbot")]
        assert "WeCom directory sync scheduled" in messages
        assert messages.count("WeCom directory synced") == 2
        no_secrets(env, caplog)
    finally:
        await db.dispose()


async def test_nothing_is_scheduled_when_off_or_unconfigured(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    db = Database(url)
    try:
        jobs = Jobs(clock=env.clock)
        assert not schedule_org_sync(jobs, env.settings(url), db)  # minutes 0: off
        caplog.set_level(logging.WARNING, logger="ticketbot")
        unconfigured = env.settings(url, wecom_org_sync_minutes=5, wecom_secret="")
        assert not schedule_org_sync(jobs, unconfigured, db)
        assert jobs.names == frozenset()
        (warning,) = records(caplog, logging.WARNING)
        assert warning.__dict__["missing"] == "TICKETBOT_WECOM_SECRET"
    finally:
        await db.dispose()


async def test_a_database_failure_reaches_the_scheduler_log_with_the_job_name(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'not-migrated.db'}"
    db = Database(url)
    try:
        jobs = Jobs(clock=env.clock)
        assert schedule_org_sync(jobs, env.settings(url, wecom_org_sync_minutes=10), db)
        caplog.set_level(logging.INFO, logger="ticketbot")
        await jobs.run(JOB_NAME)  # no tables: the sync cannot read the directory
        (error,) = records(caplog, logging.ERROR)
        assert error.name == "ticketbot.scheduler" and error.__dict__["job"] == JOB_NAME
        assert error.__dict__["error"] == "DatabaseError: no such table: org_user"
        assert error.exc_info is None and SECRET not in caplog.text
    finally:
        await db.dispose()
