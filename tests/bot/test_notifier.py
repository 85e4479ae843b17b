"""The notifier over the real store (SQLite and PostgreSQL) and engine, with a recording platform
sender and a fake clock: plans once, sends cards, closes them through the response code or with a
fresh message once the code has expired or was used, retries failures with backoff, cancels what
a platform refuses, and picks up what a previous process left behind."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import Runtime, build_runtime
from bot.notify.notifier import Notifier
from bot.notify.ports import Delivery, DeliveryStore, OutboxEvent, SendFailed
from bot.notify.urge import ChatUrger
from config.settings import load_settings
from core import commands as core
from core.service import Done
from store.deliveries import SqlDeliveries
from store.queries import SqlTicketQueries
from tests.fakes import FakeClock
from tests.fakes import RecordingSender as Recorder

CONFIG = Path(__file__).resolve().parents[2] / "config"
FIELDS = {"start_date": "2024-05-06", "end_date": "2024-05-07", "days": 2, "reason": "家里有事"}


@dataclass
class World:
    runtime: Runtime
    notifier: Notifier
    sender: Recorder
    clock: FakeClock
    store: DeliveryStore

    def fresh_notifier(self) -> Notifier:
        """Another process's notifier over the same database (as after a restart)."""
        return make_notifier(self.runtime, self.sender, self.clock)


def make_notifier(runtime: Runtime, sender: Recorder, clock: FakeClock) -> Notifier:
    store = SqlDeliveries(runtime.db, delivery_type=Delivery, event_type=OutboxEvent)
    return Notifier(
        store,
        SqlTicketQueries(runtime.db),
        runtime.catalog,
        runtime.directory,
        {"wecom": sender},
        clock,
        "https://bot.example.com",
    )


@pytest.fixture
async def world(database_url: str) -> Any:
    runtime = await build_runtime(load_settings(env={}, database_url=database_url, config_dir=CONFIG))
    sender = Recorder()
    clock = FakeClock(datetime.now(UTC))
    notifier = make_notifier(runtime, sender, clock)
    yield World(runtime, notifier, sender, clock, notifier.store)
    await runtime.db.dispose()


async def create_leave(w: World) -> int:
    result = await w.runtime.service.create(core.Create("liuyang", 1, 151, FIELDS))
    assert isinstance(result, Done)
    return result.ticket.id


async def approve(w: World, ticket_id: int, who: str = "wangqiang") -> None:
    assert isinstance(await w.runtime.service.execute(ticket_id, core.Handle(who, 152)), Done)


async def test_a_new_ticket_sends_the_handler_one_card_and_planning_again_sends_nothing(world: World) -> None:
    await create_leave(world)
    assert await world.notifier.drain() > 0
    (card,) = world.sender.to("WangQiang")
    assert [b.label for b in card.buttons] == ["同意", "驳回"]
    assert await world.notifier.drain() == 0
    assert len(world.sender.sent) == 1


async def test_a_decision_closes_the_card_with_its_response_code(world: World) -> None:
    ticket_id = await create_leave(world)
    await world.notifier.drain()
    await approve(world, ticket_id)
    await world.notifier.drain()
    ((_, code, card),) = world.sender.updated
    assert code == "rc1" and not card.buttons and card.result_text.startswith("已同意 · 王强")
    (notice,) = world.sender.to("LiuYang")
    assert notice.result_text == "已同意 · 王强"


async def test_an_expired_response_code_falls_back_to_a_fresh_message(world: World) -> None:
    ticket_id = await create_leave(world)
    await world.notifier.drain()
    world.clock.advance(hours=25)
    await approve(world, ticket_id)
    await world.notifier.drain()
    assert world.sender.updated == []
    first, fresh = world.sender.to("WangQiang")
    assert first.buttons and not fresh.buttons and fresh.result_text.startswith("已同意 · 王强")
    assert [f for _, a, _, f in world.sender.sent if a == "WangQiang"] == [0, 1]


async def test_a_used_response_code_falls_back_to_a_fresh_message(world: World) -> None:
    ticket_id = await create_leave(world)
    await world.notifier.drain()
    world.sender.fail_update.append(SendFailed("60140", code_used=True))
    await approve(world, ticket_id)
    await world.notifier.drain()
    assert world.sender.updated == []
    assert not world.sender.to("WangQiang")[-1].buttons


async def test_a_failed_send_is_retried_with_backoff_and_nothing_is_sent_twice(world: World) -> None:
    await create_leave(world)
    world.sender.fail.append(SendFailed("busy", retry_after=30))
    await world.notifier.drain()
    assert world.sender.sent == []
    world.clock.advance(seconds=29)
    assert await world.notifier.drain() == 0  # not due yet
    world.clock.advance(seconds=2)
    await world.notifier.drain()
    assert len(world.sender.to("WangQiang")) == 1
    world.clock.advance(hours=2)
    assert await world.notifier.drain() == 0


async def test_a_refused_send_is_cancelled_not_retried(world: World) -> None:
    ticket_id = await create_leave(world)
    world.sender.fail.append(SendFailed("81013 invalid user"))
    await world.notifier.drain()
    world.clock.advance(hours=2)
    assert await world.notifier.drain() == 0
    assert world.sender.sent == []
    assert await world.store.open_for_ticket(ticket_id) == []


async def test_a_card_that_became_moot_before_sending_is_cancelled(world: World) -> None:
    ticket_id = await create_leave(world)
    world.sender.fail.append(SendFailed("busy", retry_after=30))
    await world.notifier.drain()  # the card to WangQiang waits for a retry
    await approve(world, ticket_id)
    world.clock.advance(minutes=1)
    await world.notifier.drain()
    assert world.sender.to("WangQiang") == []  # never sent: the ticket had moved on
    assert {c.buttons[0].label for c in world.sender.to("YangFan") + world.sender.to("ChenJing")} == {"接单"}


async def test_events_left_by_a_previous_process_are_planned_by_the_next(world: World) -> None:
    await create_leave(world)  # nobody drained: the process "died"
    again = world.fresh_notifier()
    await again.drain()
    assert len(world.sender.to("WangQiang")) == 1


async def test_urges_send_cards_and_are_throttled_per_ticket_and_per_urger(world: World) -> None:
    ticket_id = await create_leave(world)
    await world.notifier.drain()
    urger = ChatUrger(
        world.notifier,
        SqlTicketQueries(world.runtime.db),
        world.runtime.catalog,
        world.runtime.directory,
        world.clock,
        per_hour=2,
    )
    first = await urger.urge(ticket_id, "liuyang", "请尽快")
    assert first.ok and first.reached == ("wangqiang",)
    await world.notifier.drain()
    urge = world.sender.to("WangQiang")[-1]
    assert urge.subtitle.startswith("刘洋 催办了此工单") and urge.subtitle.endswith("请尽快")
    assert [b.label for b in urge.buttons] == ["同意", "驳回"]

    again = await urger.urge(ticket_id, "liuyang")
    assert (again.ok, again.reason) == (False, "too_soon") and 0 < again.retry_after <= 600
    world.clock.advance(minutes=11)
    assert (await urger.urge(ticket_id, "liuyang")).ok
    await world.notifier.drain()
    world.clock.advance(minutes=1)
    assert (await urger.urge(await create_leave(world), "liuyang")).ok  # a 2nd ticket
    too_many = await urger.urge(await create_leave(world), "liuyang")
    assert too_many.reason == "too_many"  # 2 distinct tickets an hour at most here

    stranger = await urger.urge(ticket_id, "sunhao")
    assert stranger.reason == "not_found"
    await approve(world, ticket_id)
    await world.notifier.drain()
    world.clock.advance(minutes=11)
    # every card of the ticket (pending + 2 urges) was closed by the decision
    assert len(world.sender.updated) == 3
    assert (await urger.urge(ticket_id, "liuyang")).reason in ("no_handlers", "too_many")


def test_backoff_doubles_and_is_capped() -> None:
    from bot.notify.notifier import backoff

    assert [backoff(n, None) for n in range(4)] == [5.0, 10.0, 20.0, 40.0]
    assert backoff(30, None) == 3600.0 and backoff(0, 90.0) == 90.0
    assert timedelta(seconds=backoff(1, None)) == timedelta(seconds=10)


async def test_each_committed_change_wakes_the_listeners_and_a_refusal_does_not(world: World) -> None:
    seen: list[int] = []
    world.runtime.changes.listeners.append(seen.append)
    ticket_id = await create_leave(world)
    refused = await world.runtime.service.execute(ticket_id, core.Handle("sunhao", 152))
    assert not isinstance(refused, Done)
    await approve(world, ticket_id)
    assert seen == [ticket_id, ticket_id]


async def test_a_delivery_that_crashes_is_retried_and_does_not_block_the_others(world: World) -> None:
    await create_leave(world)
    await create_leave(world)

    broken = world.sender.send_card

    async def crash_once(delivery: Delivery, card: Any, *, fresh: int = 0) -> Any:
        world.sender.send_card = broken  # type: ignore[method-assign]
        raise RuntimeError("renderer bug")

    world.sender.send_card = crash_once  # type: ignore[method-assign]
    await world.notifier.drain()
    assert len(world.sender.to("WangQiang")) == 1  # the second ticket's card went out
    world.clock.advance(minutes=1)
    await world.notifier.drain()
    assert len(world.sender.to("WangQiang")) == 2  # the crashed one, retried


async def test_the_loop_stops_even_when_stopped_right_after_a_kick(world: World) -> None:
    for _ in range(20):
        notifier = world.fresh_notifier()
        notifier.start()
        notifier.kick()
        async with asyncio.timeout(5):  # a guard against a hang, never a wait
            await notifier.stop()


# ------------------------------------------------------------------ jitter, rate limits, dead letters


def test_jittered_backoff_is_full_jitter_under_the_doubling_ceiling() -> None:
    import random

    from bot.notify.notifier import RETRY_MAX, RETRY_MIN, backoff, jittered_backoff

    for attempts in range(16):
        draws = [jittered_backoff(attempts, None, random.Random(seed)) for seed in range(50)]
        assert all(RETRY_MIN <= d <= backoff(attempts, None) <= RETRY_MAX for d in draws)
        if attempts >= 2:
            assert len(set(draws)) > 40  # spread out, not a thundering herd
    assert jittered_backoff(5, None, random.Random(3)) == jittered_backoff(5, None, random.Random(3))
    assert all(jittered_backoff(0, 90.0, random.Random(s)) == 90.0 for s in range(10))  # the floor wins


class LowestDraw:
    """An rng whose jitter is always the shortest possible wait."""

    def uniform(self, a: float, b: float) -> float:
        return a


def tuned_notifier(w: World, **kw: Any) -> Notifier:
    return Notifier(
        w.store,
        SqlTicketQueries(w.runtime.db),
        w.runtime.catalog,
        w.runtime.directory,
        {"wecom": w.sender},
        w.clock,
        "https://bot.example.com",
        **kw,
    )


async def test_the_notifier_draws_its_retry_delay_from_the_injected_rng(world: World) -> None:
    notifier = tuned_notifier(world, rng=LowestDraw())
    await create_leave(world)
    world.sender.fail.append(SendFailed("busy", retry_after=0.5))
    await notifier.drain()
    assert world.sender.sent == []
    world.clock.advance(seconds=1)  # RETRY_MIN, the lowest draw
    await notifier.drain()
    assert len(world.sender.to("WangQiang")) == 1


async def test_sends_over_a_recipients_limit_are_deferred_not_failed(world: World) -> None:
    from bot.notify.ratelimit import Limit

    notifier = tuned_notifier(world, recipient_limits={"wecom": (Limit(2, timedelta(minutes=1)),)})
    ids = [await create_leave(world) for _ in range(3)]
    await notifier.drain()
    assert len(world.sender.to("WangQiang")) == 2
    (late,) = await world.store.open_for_ticket(ids[2])
    assert (late.status, late.attempts, late.last_error) == ("pending", 0, "")
    assert late.due_at == world.clock.now() + timedelta(minutes=1)
    world.clock.advance(seconds=59)
    assert await notifier.drain() == 0
    world.clock.advance(seconds=1)
    await notifier.drain()
    assert len(world.sender.to("WangQiang")) == 3


async def test_a_platform_rate_limit_is_a_deferral_not_an_attempt(world: World) -> None:
    ticket_id = await create_leave(world)
    world.sender.fail.append(SendFailed("over 30/min", retry_after=42, rate_limited=True))
    await world.notifier.drain()
    (d,) = await world.store.open_for_ticket(ticket_id)
    assert (d.status, d.attempts) == ("pending", 0)
    assert d.due_at == world.clock.now() + timedelta(seconds=42)


def test_wecom_allows_30_messages_a_minute_and_1000_an_hour_per_person() -> None:
    from bot.notify.ratelimit import RecipientLimiter

    limiter = RecipientLimiter()
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    for i in range(30):
        assert limiter.wait("wecom", "WangQiang", t0 + timedelta(seconds=i)) == 0
        limiter.record("wecom", "WangQiang", t0 + timedelta(seconds=i))
    assert limiter.wait("wecom", "WangQiang", t0 + timedelta(seconds=30)) == 30.0  # the 1st leaves at 60 s
    assert limiter.wait("wecom", "LiNa", t0) == 0  # per person
    assert limiter.wait("dingtalk", "WangQiang", t0) == 0  # DingTalk documents no per-person limit
    assert limiter.wait("wecom", "WangQiang", t0 + timedelta(seconds=60)) == 0
    hourly = RecipientLimiter()
    for i in range(1000):
        hourly.record("wecom", "x", t0 + timedelta(minutes=3 * i / 60))  # 20 a minute
    assert hourly.wait("wecom", "x", t0 + timedelta(minutes=50)) > 0


async def test_a_dead_delivery_is_logged_once_at_error_with_its_ticket_recipient_platform_and_error(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    from store.deliveries import MAX_ATTEMPTS

    ticket_id = await create_leave(world)
    caplog.set_level("INFO", logger="ticketbot.notify")
    for _ in range(MAX_ATTEMPTS + 2):
        world.sender.fail = [SendFailed("HTTP 502 bad gateway", retry_after=1)]
        await world.notifier.drain()
        world.clock.advance(hours=2)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    (dead,) = errors
    assert dead.getMessage().startswith("delivery dead")
    attrs = vars(dead)
    assert (attrs["ticket_id"], attrs["platform"], attrs["to"]) == (ticket_id, "wecom", "wangqiang")
    assert attrs["error"] == "HTTP 502 bad gateway" and attrs["attempts"] == MAX_ATTEMPTS
    assert world.sender.sent == []
