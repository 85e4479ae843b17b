"""The due-work runner over the real store (SQLite and PostgreSQL), engine, notifier and the shipped
leave workflow (102 部门领导审批: remind after 4h, urge after 9h, escalate after 18h of business
time; 104 人事备案: timer 157 after 7 days), with a fake clock and a recording platform."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import DUE_WORK, JOBS, Runtime, build_runtime, create_app
from bot.cards.model import CardKind
from bot.due_work import DueWorkRunner, human, leaders_of
from bot.notify.notifier import Notifier
from bot.notify.ports import Delivery, OutboxEvent
from config.settings import load_settings
from core import commands as core
from core.access import can_view
from core.service import Done, TicketService
from core.ticket import SYSTEM_USER
from store.deliveries import SqlDeliveries
from store.due_work import DONE, PENDING, SKIPPED, SqlDueWork
from store.queries import SqlTicketQueries
from store.tickets import SqlTicketStore
from tests.fakes import FakeClock
from tests.fakes import RecordingSender as Recorder

CONFIG = Path(__file__).resolve().parents[2] / "config"
FIELDS = {"start_date": "2026-01-12", "end_date": "2026-01-13", "days": 2, "reason": "家里有事"}
MONDAY_10 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # Monday 10:00 at +08:00


@dataclass
class World:
    runtime: Runtime
    runner: DueWorkRunner
    notifier: Notifier
    sender: Recorder
    clock: FakeClock
    work: SqlDueWork

    async def tick(self, **delta: float) -> int:
        """Time passes; the due-work job and the notifier run."""
        self.clock.advance(**delta)
        done = await self.runner.drain()
        await self.notifier.drain()
        return done

    def at(self, when: datetime) -> None:
        self.clock.current = when


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    runtime = await build_runtime(load_settings(env={}, database_url=database_url, config_dir=CONFIG))
    clock = FakeClock(MONDAY_10)
    service = TicketService(
        SqlTicketStore(runtime.db),
        runtime.catalog,
        runtime.directory,
        clock,
        calendar=runtime.config.calendar,
    )
    runtime = dataclasses.replace(runtime, service=service)
    sender = Recorder()
    queries = SqlTicketQueries(runtime.db)
    notifier = Notifier(
        SqlDeliveries(runtime.db, delivery_type=Delivery, event_type=OutboxEvent),
        queries,
        runtime.catalog,
        runtime.directory,
        {"wecom": sender},
        clock,
        "https://bot.example.com",
    )
    work = SqlDueWork(runtime.db)
    runner = DueWorkRunner(
        work, service, queries, runtime.catalog, runtime.directory, notifier, clock, worker="test"
    )
    yield World(runtime, runner, notifier, sender, clock, work)
    await runtime.db.dispose()


async def create_leave(w: World) -> int:
    result = await w.runtime.service.create(core.Create("liuyang", 1, 151, FIELDS))
    assert isinstance(result, Done)
    await w.notifier.drain()
    return result.ticket.id


async def act(w: World, ticket_id: int, cmd: core.Command) -> None:
    assert isinstance(await w.runtime.service.execute(ticket_id, cmd), Done)
    await w.notifier.drain()


async def statuses(w: World, ticket_id: int) -> dict[str, str]:
    return {f"{r.kind}{r.step or ''}@{r.state_id}": r.status for r in await w.work.for_ticket(ticket_id)}


# --- timers ----------------------------------------------------------------------------------------


async def test_a_timer_fires_once_as_the_system_user(world: World) -> None:
    ticket_id = await create_leave(world)
    await act(world, ticket_id, core.Handle("wangqiang", 152))  # -> 104 人事备案, timer 7d
    assert await world.tick(days=7, seconds=-1) == 3  # 102's SLA came due: skipped, it left
    ticket = await SqlTicketQueries(world.runtime.db).get_ticket(ticket_id)
    assert ticket is not None and ticket.state_id == 104
    assert await world.tick(seconds=1) == 1
    ticket = await SqlTicketQueries(world.runtime.db).get_ticket(ticket_id)
    assert ticket is not None and ticket.state_id == 105 and ticket.is_ended
    logs = await SqlTicketQueries(world.runtime.db).flow_logs(ticket_id, desc=True)
    assert logs[0].actor == SYSTEM_USER and logs[0].transition_id == 157
    assert await world.tick(days=30) == 0  # never again
    assert await statuses(world, ticket_id) == {
        "remind@102": SKIPPED,
        "urge@102": SKIPPED,
        "escalate@102": SKIPPED,
        "timer@104": DONE,
    }


async def test_a_timer_does_not_fire_when_the_ticket_moved_on(world: World) -> None:
    ticket_id = await create_leave(world)
    await act(world, ticket_id, core.Handle("wangqiang", 152))
    await act(world, ticket_id, core.Accept("chenjing"))
    await act(world, ticket_id, core.Handle("chenjing", 156))  # 备案完成 -> 105 by a person
    await world.tick(days=8)
    assert (await statuses(world, ticket_id))["timer@104"] == SKIPPED
    logs = await SqlTicketQueries(world.runtime.db).flow_logs(ticket_id, desc=True)
    assert all(log.actor != SYSTEM_USER for log in logs)


# --- SLA -------------------------------------------------------------------------------------------


async def test_remind_urge_and_escalate_reach_the_right_people_in_business_time(world: World) -> None:
    ticket_id = await create_leave(world)
    (pending,) = world.sender.to("WangQiang")
    assert pending.kind == CardKind.PENDING
    # remind: 4 working hours after Monday 10:00 is Monday 14:00
    assert await world.tick(hours=4, seconds=-1) == 0
    assert await world.tick(seconds=1) == 1
    remind = world.sender.to("WangQiang")[-1]
    assert remind.kind == CardKind.URGE and [b.label for b in remind.buttons] == ["同意", "驳回"]
    assert remind.subtitle == "提醒：工单已在「部门领导审批」等待 4 小时（工作时间）"
    # urge: 9 working hours = Tuesday 10:00 (the night does not count)
    world.at(datetime(2026, 1, 6, 1, 59, tzinfo=UTC))
    assert await world.tick() == 0
    assert await world.tick(minutes=1) == 1
    urge = world.sender.to("WangQiang")[-1]
    assert urge.kind == CardKind.URGE and urge.subtitle.startswith(
        "催办：工单已在「部门领导审批」等待超过 9 小时"
    )
    # escalate: 18 working hours = Wednesday 10:00, to 李娜 (the leader of 王强's 技术部), read-only
    world.at(datetime(2026, 1, 7, 2, 0, tzinfo=UTC))
    assert await world.tick() == 1
    (notice,) = world.sender.to("LiNa")
    assert notice.kind == CardKind.INFO and notice.buttons == ()
    assert notice.subtitle == "升级：工单已在「部门领导审批」等待超过 18 小时（工作时间），王强 尚未处理"
    assert notice.link_url and notice.ticket_id == ticket_id
    ticket = await SqlTicketQueries(world.runtime.db).get_ticket(ticket_id)
    wf = world.runtime.catalog.get(1)
    assert ticket is not None and wf is not None and "lina" in ticket.cc
    assert can_view(ticket, wf, world.runtime.config.org, "lina")  # the link opens for her
    assert ticket.handlers == ("wangqiang",)  # the decision stays with the approver
    assert len(world.sender.to("WangQiang")) == 3 and world.sender.to("LiuYang") == []
    assert set((await statuses(world, ticket_id)).values()) == {DONE}


async def test_sla_work_is_skipped_once_the_ticket_left_the_state(world: World) -> None:
    ticket_id = await create_leave(world)
    await act(world, ticket_id, core.Handle("wangqiang", 153))  # 驳回: back to the creator
    await world.tick(days=5)
    assert await statuses(world, ticket_id) == {
        "remind@102": SKIPPED,
        "urge@102": SKIPPED,
        "escalate@102": SKIPPED,
    }
    assert all(card.kind != CardKind.URGE for _, _, card, _ in world.sender.sent)
    assert world.sender.to("LiNa") == []
    # resubmitted: a new stay, a new SLA
    await act(world, ticket_id, core.Handle("liuyang", 151))
    assert list((await statuses(world, ticket_id)).values()).count(PENDING) == 3


async def test_a_crash_on_one_row_is_retried_later(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket_id = await create_leave(world)

    async def boom(*args: object) -> None:
        raise RuntimeError("boom")

    with monkeypatch.context() as patch:
        patch.setattr(world.runner, "_urge", boom)
        await world.tick(hours=4)
    (remind,) = [r for r in await world.work.for_ticket(ticket_id) if r.kind == "remind"]
    assert (remind.status, remind.attempts, remind.last_error) == (PENDING, 1, "RuntimeError: boom")
    assert await world.tick(seconds=29) == 0  # backoff: 30 s
    assert await world.tick(seconds=1) == 1
    assert world.sender.to("WangQiang")[-1].subtitle.startswith("提醒：")


# --- helpers and wiring -----------------------------------------------------------------------------


def test_human_durations() -> None:
    assert human(timedelta(hours=4)) == "4 小时"
    assert human(timedelta(days=1, hours=2)) == "1 天 2 小时"
    assert human(timedelta(minutes=30)) == "30 分钟"
    assert human(timedelta(seconds=20)) == "不到 1 分钟"


async def test_leaders_are_the_nearest_leader_who_is_not_the_handler(world: World) -> None:
    org = world.runtime.config.org
    assert leaders_of(org, ["wangqiang"]) == ["lina"]
    assert leaders_of(org, ["lina"]) == ["zhangwei"]  # leads 技术部: her leader is 总部's
    assert leaders_of(org, ["wangqiang", "lina"]) == ["zhangwei"]  # a handler is not told as a leader
    assert leaders_of(org, ["zhangwei"]) == []


async def test_the_app_schedules_the_due_work_job(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = load_settings(
        env={}, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", config_dir=CONFIG
    )
    client = await aiohttp_client(await create_app(settings))
    app = client.server.app
    job = app[JOBS].job("due-work")
    assert job.trigger.interval == timedelta(seconds=15) and job.max_instances == 1
    assert isinstance(app[DUE_WORK], DueWorkRunner)


async def test_the_due_work_job_can_be_turned_off(aiohttp_client: Any, tmp_path: Path) -> None:
    env = {"TICKETBOT_DUE_WORK_SECONDS": "0"}
    settings = load_settings(
        env=env, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", config_dir=CONFIG
    )
    client = await aiohttp_client(await create_app(settings))
    assert "due-work" not in client.server.app[JOBS].names
