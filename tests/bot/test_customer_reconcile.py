"""The full customer reconcile (bot/wecom/customer_reconcile.py) against the WeCom emulator on
127.0.0.1, on SQLite and PostgreSQL: customers changed at WeCom without their callback are put
right, a partial run never deletes, the safety valve, a second run writes nothing; the scheduled
job (its log lines, its wiring in the app), and `ticketbot customers sync` as a subprocess. No
sleeps: the clock is fake and the runs are awaited."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.__main__ import main
from bot.app import JOBS, create_app
from bot.customers_cli import run_customers
from bot.scheduler import Jobs
from bot.wecom.client import WeComBusy, WeComClient
from bot.wecom.contacts import ExternalContacts
from bot.wecom.customer_reconcile import (
    CONCURRENCY,
    ReconcileReport,
    directory_staff,
    format_report,
    reconcile,
)
from bot.wecom.customer_reconcile_job import (
    FIRST_RUN_DELAY,
    JOB_NAME,
    make_customer_sync_job,
    schedule_customer_sync,
)
from config.settings import Settings, load_settings
from core.org import Org, User
from core.workorder import Customer
from emulator.wecom import WeComEmulator
from store.customers import SqlCustomers
from store.db import Database
from store.directory import replace_org
from store.tables import customer
from tests.bot.test_org_sync import _cli_env, _ticketbot
from tests.fakes import FakeClock

CONFIG = Path(__file__).resolve().parents[2] / "config"
CORP = "ww-corp-customers"
AGENT = 1000002
SECRET = "customer-secret-DO-NOT-LOG"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
LIST = "/cgi-bin/externalcontact/list"
GET = "/cgi-bin/externalcontact/get"
FOLLOW_LIST = "/cgi-bin/externalcontact/get_follow_user_list"
LOGGER = "ticketbot.wecom.customers"
ORG: dict[str, list[dict[str, Any]]] = {
    "departments": [{"id": 1, "name": "总部", "parentid": 0}],
    "users": [
        {"userid": "LiuYang", "name": "刘洋", "department": [1]},
        {"userid": "XuLi", "name": "徐丽", "department": [1]},
        {"userid": "Idle", "name": "没有客户", "department": [1]},
    ],
}


def customers(n: int, *followers: str) -> list[dict[str, Any]]:
    """`n` customers wm01, wm02, ... followed by `followers` (LiuYang by default)."""
    return [
        {
            "external_userid": f"wm{i:02d}",
            "name": f"客户{i}",
            "follow_user": [{"userid": u, "createtime": 1700000000 + i} for u in followers or ("LiuYang",)],
        }
        for i in range(1, n + 1)
    ]


def mixed(n: int) -> list[dict[str, Any]]:
    """`n` customers of LiuYang, and wmX, a customer of XuLi's."""
    return [
        *customers(n),
        {"external_userid": "wmX", "name": "徐丽的客户", "follow_user": [{"userid": "XuLi"}]},
    ]


@dataclass
class Env:
    emulator: WeComEmulator
    server: TestServer
    session: aiohttp.ClientSession
    clock: FakeClock

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def client(self) -> WeComClient:
        async def no_sleep(_: float) -> None:
            return None

        return WeComClient(
            self.session,
            api_base=self.url,
            corp_id=CORP,
            corp_secret=SECRET,
            agent_id=AGENT,
            clock=self.clock,
            sleep=no_sleep,
        )

    async def run(self, db: Database, *, dry_run: bool = False) -> ReconcileReport:
        self.clock.advance(minutes=1)  # a write of this run has a new updated_at
        return await reconcile(
            ExternalContacts(self.client()),
            SqlCustomers(db),
            clock=self.clock,
            staff=lambda: directory_staff(db),
            dry_run=dry_run,
        )

    def settings(self, database_url: str, **kw: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "config_dir": CONFIG,
            "wecom_corp_id": CORP,
            "wecom_secret": SECRET,
            "wecom_agent_id": AGENT,
            "wecom_api_base": self.url,
        }
        return Settings(**{**values, **kw})


@pytest.fixture
async def env(aiohttp_server: Any) -> AsyncIterator[Env]:
    clock = FakeClock()
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, org=ORG)
    server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
    async with aiohttp.ClientSession() as session:
        yield Env(emulator, server, session, clock)


async def stamps(db: Database) -> dict[str, tuple[bool, datetime]]:
    """external_userid -> (deleted, updated_at) of every stored customer."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(customer.c.external_userid, customer.c.deleted, customer.c.updated_at)
        )
        return {r[0]: (r[1], r[2]) for r in rows}


def counts(report: ReconcileReport) -> dict[str, int]:
    return {
        k: getattr(report, k)
        for k in ("listed_users", "seen", "stored", "missing", "added", "updated", "unchanged", "deleted")
    } | {"refused": report.refused, "failed": report.failed, "failed_users": len(report.failed_users)}


def records(
    caplog: pytest.LogCaptureFixture, level: int, logger: str = "ticketbot"
) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == level and r.name.startswith(logger)]


def text(caplog: pytest.LogCaptureFixture) -> str:
    """Every line logged, with every field of each record."""
    return caplog.text + " ".join(str(r.__dict__) for r in caplog.records)


def no_secrets(env: Env, said: str) -> None:
    assert SECRET not in said
    assert env.emulator.issued_tokens() and not any(t in said for t in env.emulator.issued_tokens())


# ---------------------------------------------------------------- one run


async def test_changes_whose_callback_never_came_are_put_right_and_a_second_run_writes_nothing(
    env: Env, db: Database
) -> None:
    contacts = env.emulator.contacts
    contacts.load(customers(3, "LiuYang", "XuLi"))
    first = await env.run(db)
    assert counts(first) == {
        "listed_users": 2,  # the follow user list: Idle has no customer contact feature
        "seen": 3,
        "stored": 0,
        "missing": 0,
        "added": 3,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "refused": 0,
        "failed": 0,
        "failed_users": 0,
    }
    assert first.users_from == "follow_user_list" and first.complete

    # three changes at WeCom; no bot is connected, so no callback reaches ticketbot
    added = await contacts.add("XuLi", {"external_userid": "wmNew", "name": "新客户", "gender": 2})
    await contacts.edit("LiuYang", "wm01", contact={"name": "改名了"}, follow={"remark": "大客户"})
    await contacts.delete("LiuYang", "wm02")
    await contacts.deleted_by_customer("XuLi", "wm02")  # its last follow user: WeCom answers 84061
    assert added.bot_status is None and added.error == "no bot connected"

    second = await env.run(db)
    assert (second.seen, second.stored, second.missing) == (3, 3, 1)
    assert (second.added, second.updated, second.unchanged, second.deleted) == (1, 1, 1, 1)
    store = SqlCustomers(db)
    new = await store.get("wmNew")
    assert new is not None and (new.name, new.gender, new.deleted) == ("新客户", 2, False)
    assert [f["userid"] for f in new.follow_users] == ["XuLi"]
    edited = await store.get("wm01")
    assert edited is not None and edited.name == "改名了"
    assert {f["userid"]: f["remark"] for f in edited.follow_users}["LiuYang"] == "大客户"
    gone = await store.get("wm02")
    assert gone is not None and gone.deleted and gone.name == "客户2"  # kept for the work orders
    before = await stamps(db)

    third = await env.run(db)  # idempotent: nothing to change, nothing written
    assert (third.added, third.updated, third.deleted, third.unchanged) == (0, 0, 0, 3)
    assert (third.stored, third.missing) == (3, 0)
    assert await stamps(db) == before


async def test_a_run_costs_one_list_per_follow_user_and_one_get_per_customer(env: Env, db: Database) -> None:
    env.emulator.contacts.load(customers(9, "LiuYang", "XuLi"))
    calls = env.emulator.records.calls
    for stored in (0, 9):  # a customer seen and stored is read once, not twice
        calls.clear()
        report = await env.run(db)
        assert report.stored == stored and report.complete
        assert calls.count("/cgi-bin/gettoken") == 1 and calls.count(FOLLOW_LIST) == 1
        assert calls.count(LIST) == 2 and calls.count(GET) == 9 and len(calls) == 13


async def test_a_failed_list_call_deletes_nothing(env: Env, db: Database) -> None:
    env.emulator.contacts.load(mixed(3))
    await env.run(db)
    await env.emulator.contacts.delete("LiuYang", "wm03")  # really gone
    env.emulator.fail_next(1, 84074, path=LIST)  # one member's list is refused

    partial = await env.run(db)
    assert len(partial.failed_users) == 1 and partial.listed_users == 2 and not partial.complete
    assert partial.deleted == 0 and partial.missing >= 1
    assert "84074" in partial.first_error and "nothing deleted" in format_report(partial)
    assert not any(deleted for deleted, _ in (await stamps(db)).values())

    complete = await env.run(db)  # the next complete run catches up
    assert complete.deleted == 1 and complete.complete
    assert {k for k, (deleted, _) in (await stamps(db)).items() if deleted} == {"wm03"}


async def test_more_than_half_missing_is_refused_and_exactly_half_is_not(
    env: Env, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    env.emulator.contacts.load(customers(6))
    await env.run(db)
    follows = env.emulator.contacts.follows
    taken = {ext: follows[ext].pop("LiuYang") for ext in ("wm01", "wm02", "wm03", "wm04")}  # 4 of 6

    caplog.set_level(logging.INFO, logger="ticketbot")
    refused = await env.run(db)
    assert (refused.missing, refused.refused, refused.deleted, refused.stored) == (4, 4, 0, 6)
    assert refused.unchanged == 2 and not refused.complete  # wm05 and wm06 still refreshed
    assert not any(deleted for deleted, _ in (await stamps(db)).values())
    (error,) = records(caplog, logging.ERROR)
    assert error.name == LOGGER and error.getMessage() == "WeCom customer reconcile refused: nothing deleted"
    assert (error.__dict__["missing"], error.__dict__["stored"]) == (4, 6)
    assert "refused: 4 of the 6" in format_report(refused)

    follows["wm01"]["LiuYang"] = taken["wm01"]  # 3 of 6 missing: exactly half is allowed
    allowed = await env.run(db)
    assert (allowed.missing, allowed.refused, allowed.deleted) == (3, 0, 3)


async def test_a_small_store_may_lose_every_customer(env: Env, db: Database) -> None:
    env.emulator.contacts.load(customers(4))
    await env.run(db)
    for ext in ("wm01", "wm02", "wm03", "wm04"):
        await env.emulator.contacts.delete("LiuYang", ext)
    report = await env.run(db)
    assert (report.listed_users, report.missing, report.deleted, report.refused) == (1, 4, 4, 0)


async def test_a_customer_missing_from_the_lists_is_kept_while_wecom_still_shows_a_follow_user(
    env: Env, db: Database
) -> None:
    env.emulator.contacts.load(mixed(2))
    await env.run(db)
    env.emulator.contacts.follow_members.discard("XuLi")  # WeCom's follow user list leaves her out
    report = await env.run(db)
    assert (report.listed_users, report.seen, report.missing, report.deleted) == (1, 2, 1, 0)
    assert report.unchanged == 3  # wmX read again: still XuLi's customer, kept as it was
    kept = await SqlCustomers(db).get("wmX")
    assert kept is not None and not kept.deleted


async def test_without_the_follow_user_list_the_directorys_wecom_users_are_listed(
    env: Env, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    env.emulator.contacts.load(customers(2, "XuLi"))
    users = [User("liu", wecom_userid="LiuYang"), User("xu", wecom_userid="XuLi"), User("nobody")]
    users.append(User("left", wecom_userid="Left", is_active=False))
    users.append(User("ghost", wecom_userid="Ghost"))  # not a member of WeCom (60111): no customers
    await replace_org(db, Org.build(users), "config")
    env.emulator.forbidden_paths.add(FOLLOW_LIST)
    caplog.set_level(logging.WARNING, logger="ticketbot")
    report = await env.run(db)
    assert report.users_from == "directory" and "the directory" in format_report(report)
    assert (report.listed_users, report.seen, report.added, report.failed_users) == (3, 2, 2, ())
    (warning,) = records(caplog, logging.WARNING, LOGGER)
    assert warning.__dict__["errcode"] == 48002 and warning.__dict__["users"] == 3


async def test_a_dry_run_reads_everything_and_writes_nothing(env: Env, db: Database) -> None:
    env.emulator.contacts.load(customers(3))
    await env.run(db)
    await env.emulator.contacts.add("LiuYang", {"external_userid": "wmNew", "name": "新"})
    await env.emulator.contacts.edit("LiuYang", "wm01", contact={"name": "改"})
    await env.emulator.contacts.delete("LiuYang", "wm02")
    before = await stamps(db)
    dry = await env.run(db, dry_run=True)
    assert dry.dry_run and (dry.added, dry.updated, dry.deleted, dry.unchanged) == (1, 1, 1, 1)
    assert "dry run: nothing written" in format_report(dry) and "deleted would be: 1" in format_report(dry)
    assert await stamps(db) == before


async def test_when_wecom_refuses_the_run_nothing_is_written(env: Env, db: Database) -> None:
    env.emulator.contacts.load(customers(2))
    env.emulator.fail_next(3, -1, path=FOLLOW_LIST)  # busy, after every retry
    with pytest.raises(WeComBusy):
        await env.run(db)
    assert await stamps(db) == {}


# ---------------------------------------------------------------- bounded concurrency, with fakes


class _Held:
    """A WeCom whose every list call waits for `gate`; `inside` counts the calls in flight."""

    def __init__(self, users: int) -> None:
        self.users = [f"u{i}" for i in range(users)]
        self.inside = 0
        self.most = 0
        self.full = asyncio.Event()
        self.gate = asyncio.Event()

    async def follow_user_ids(self) -> list[str]:
        return self.users

    async def ids_of(self, userid: str) -> list[str]:
        self.inside += 1
        self.most = max(self.most, self.inside)
        if self.inside == CONCURRENCY:
            self.full.set()
        await self.gate.wait()
        self.inside -= 1
        return [f"wm-{userid}"]

    async def get(self, external_userid: str) -> Customer:
        return Customer(external_userid, "x", follow_users=({"userid": external_userid[3:]},))


class _Store:
    def __init__(self) -> None:
        self.rows: dict[str, Customer] = {}

    async def upsert(self, c: Customer, now: datetime) -> None:
        self.rows[c.external_userid] = c

    async def mark_deleted(self, external_userid: str, now: datetime) -> bool:
        return False

    async def get(self, external_userid: str) -> Customer | None:
        return self.rows.get(external_userid)

    async def many(self, ids: Any) -> dict[str, Customer]:
        return {}

    async def live_ids(self) -> list[str]:
        return sorted(self.rows)


async def test_only_a_few_calls_are_in_flight_at_once() -> None:
    wecom, store = _Held(users=10), _Store()
    run = asyncio.create_task(reconcile(wecom, store, clock=FakeClock()))
    await wecom.full.wait()
    assert wecom.inside == CONCURRENCY  # every other list call waits its turn
    wecom.gate.set()
    report = await run
    assert wecom.most == CONCURRENCY and report.added == 10 and len(store.rows) == 10


# ---------------------------------------------------------------- the scheduled job


def opener(env: Env) -> Any:
    @asynccontextmanager
    async def open_client() -> AsyncIterator[WeComClient]:
        yield env.client()

    return open_client


async def test_the_job_logs_one_summary_line_and_an_error_when_incomplete(
    env: Env, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    env.emulator.contacts.load(mixed(2))
    job = make_customer_sync_job(db, opener(env), clock=env.clock)
    caplog.set_level(logging.INFO, logger="ticketbot")
    await job()
    (summary,) = records(caplog, logging.INFO, LOGGER)
    assert summary.getMessage() == "WeCom customers reconciled" and summary.__dict__["job"] == JOB_NAME
    fields = ("listed_users", "seen", "stored", "added", "updated", "unchanged", "deleted", "refused")
    assert {k: summary.__dict__[k] for k in fields} == {
        "listed_users": 2,
        "seen": 3,
        "stored": 0,
        "added": 3,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "refused": 0,
    }
    assert (summary.__dict__["failed_users"], summary.__dict__["duration_ms"]) == (0, 0)
    assert not records(caplog, logging.ERROR)

    logged = [text(caplog)]
    caplog.clear()
    env.emulator.fail_next(1, 48002, path=LIST)
    await job()
    (error,) = records(caplog, logging.ERROR)
    assert error.getMessage() == "WeCom customer reconcile incomplete: nothing deleted"
    assert error.__dict__["failed_users"] == 1 and "48002" in error.__dict__["error"]
    assert error.__dict__["failed_userids"] in ("LiuYang", "XuLi")
    (summary,) = records(caplog, logging.INFO, LOGGER)
    assert summary.__dict__["failed_users"] == 1

    logged.append(text(caplog))
    caplog.clear()
    env.emulator.fail_next(1, 40001, path="/cgi-bin/gettoken")
    failing = make_customer_sync_job(db, opener(env), clock=env.clock)  # a fresh client: a new token
    await failing()  # logged, never raised
    (error,) = records(caplog, logging.ERROR)
    assert error.getMessage() == "WeCom customer reconcile failed: nothing changed"
    assert error.__dict__["errcode"] == 40001 and "secret is wrong" in error.__dict__["error"]
    assert not records(caplog, logging.INFO, LOGGER)
    no_secrets(env, " ".join([*logged, text(caplog)]))


async def test_schedule_customer_sync_adds_the_job_and_runs_over_the_wire(
    env: Env, db: Database, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    env.emulator.contacts.load(customers(2))
    jobs = Jobs(clock=env.clock)
    caplog.set_level(logging.INFO, logger="ticketbot")
    assert schedule_customer_sync(jobs, env.settings(database_url, wecom_customer_sync_minutes=45), db)
    job = jobs.job(JOB_NAME)
    assert job.trigger.interval == timedelta(minutes=45)
    assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 45 * 60)
    assert job.next_run_time == env.clock.now() + FIRST_RUN_DELAY
    await jobs.run(JOB_NAME)  # the production client factory, against the emulator
    assert set(await SqlCustomers(db).live_ids()) == {"wm01", "wm02"}
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("ticketbot")]
    assert "WeCom customer reconcile scheduled" in messages and "WeCom customers reconciled" in messages


async def test_nothing_is_scheduled_when_off_or_unconfigured(
    env: Env, db: Database, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = Jobs(clock=env.clock)
    assert not schedule_customer_sync(jobs, env.settings(database_url), db)  # 0: off
    caplog.set_level(logging.WARNING, logger="ticketbot")
    unconfigured = env.settings(database_url, wecom_customer_sync_minutes=5, wecom_secret="")
    assert not schedule_customer_sync(jobs, unconfigured, db)
    assert jobs.names == frozenset()
    (warning,) = records(caplog, logging.WARNING)
    assert warning.__dict__["missing"] == "TICKETBOT_WECOM_SECRET"


async def test_a_database_failure_reaches_the_scheduler_log_with_the_job_name(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'not-migrated.db'}"
    db = Database(url)
    try:
        jobs = Jobs(clock=env.clock)
        assert schedule_customer_sync(jobs, env.settings(url, wecom_customer_sync_minutes=10), db)
        caplog.set_level(logging.INFO, logger="ticketbot")
        await jobs.run(JOB_NAME)  # no tables: the run cannot read the stored customers
        (error,) = records(caplog, logging.ERROR)
        assert error.name == "ticketbot.scheduler" and error.__dict__["job"] == JOB_NAME
        assert error.__dict__["error"] == "DatabaseError: no such table: customer"
        assert SECRET not in text(caplog)
    finally:
        await db.dispose()


async def test_the_app_schedules_the_reconcile_only_when_on_and_only_on_the_first_worker(
    env: Env, database_url: str
) -> None:
    base = {
        "TICKETBOT_DUE_WORK_SECONDS": "0",
        "TICKETBOT_WECOM_CORP_ID": CORP,
        "TICKETBOT_WECOM_AGENT_ID": str(AGENT),
        "TICKETBOT_WECOM_SECRET": SECRET,
        "TICKETBOT_WECOM_TOKEN": "callback-token",
        "TICKETBOT_WECOM_AES_KEY": AES_KEY,
        "TICKETBOT_WECOM_API_BASE": env.url,
    }
    on = {**base, "TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES": "30"}
    for env_vars, worker_index, scheduled in ((base, None, False), (on, None, True), (on, 1, False)):
        settings = load_settings(env=env_vars, database_url=database_url, config_dir=CONFIG)
        app = await create_app(settings, worker_index=worker_index)
        try:
            assert (JOB_NAME in app[JOBS].names) is scheduled, (env_vars, worker_index)
            if scheduled:
                assert app[JOBS].job(JOB_NAME).trigger.interval == timedelta(minutes=30)
        finally:
            for cleanup in app.on_cleanup:
                await cleanup(app)


# ---------------------------------------------------------------- ticketbot customers sync


def test_cli_customers_sync_help_and_missing_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["customers", "sync", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "--dry-run" in out and "--database-url" in out
    assert "more than half" in out and "TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES" in out
    for name in [k for k in os.environ if k.startswith("TICKETBOT_")]:
        monkeypatch.delenv(name)
    url = f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"
    args = argparse.Namespace(customers_command="sync", dry_run=True, database_url=url)
    assert run_customers(args) == 1
    assert "TICKETBOT_WECOM_CORP_ID, TICKETBOT_WECOM_SECRET" in capsys.readouterr().err
    assert run_customers(argparse.Namespace(customers_command=None)) == 2
    assert not (tmp_path / "none.db").exists()


async def test_cli_customers_sync_end_to_end(env: Env, database_url: str) -> None:
    wecom = _cli_env(
        TICKETBOT_WECOM_CORP_ID=CORP,
        TICKETBOT_WECOM_SECRET=SECRET,
        TICKETBOT_WECOM_TOKEN="tok",
        TICKETBOT_WECOM_AES_KEY="a" * 43,
        TICKETBOT_WECOM_API_BASE=env.url,
    )
    sync = ("customers", "sync", "--database-url", database_url)
    env.emulator.contacts.load(customers(3))
    code, out, err = await _ticketbot(*sync, "--dry-run", env=wecom)
    assert code == 0, err
    assert "dry run: nothing written" in out and "added would be: 3" in out
    db = Database(database_url)
    try:
        assert await SqlCustomers(db).live_ids() == []
        code, out, err = await _ticketbot(*sync, env=wecom)
        assert code == 0, err
        assert "WeCom customers reconciled" in out and "added: 3" in out
        assert await SqlCustomers(db).live_ids() == ["wm01", "wm02", "wm03"]

        await env.emulator.contacts.delete("LiuYang", "wm03")
        env.emulator.fail_next(1, 84074, path=LIST)  # LiuYang's list: the only follow user
        code, out, err = await _ticketbot(*sync, env=wecom)
        assert code == 1 and "failed: 1: LiuYang" in out and "nothing deleted" in out
        assert "customer sync incomplete" in err and "84074" in err
        assert await SqlCustomers(db).live_ids() == ["wm01", "wm02", "wm03"]

        env.emulator.fail_next(1, 40001, path="/cgi-bin/gettoken")
        code, out, err = await _ticketbot(*sync, env=wecom)
        assert code == 1 and "customer sync failed" in err and "40001" in err and "secret is wrong" in err
        no_secrets(env, out + err)
    finally:
        await db.dispose()
