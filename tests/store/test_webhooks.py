"""work_order_change webhook calls in the store (SQLite and PostgreSQL): written in the transaction of
the change that causes them (and rolled back with it), once per change even when written again,
only for the apps subscribed to the work order's workflow; claimed by one worker at a time (FOR
UPDATE SKIP LOCKED on PostgreSQL), retried, dead, requeued."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.webhooks.subscriptions import webhook_routes
from config.apps import ApiApp
from config.loader import LoadedConfig, load_config
from core import commands as c
from core.catalog import Catalog
from core.decide import decide
from core.decision import Context, Decision
from core.order_no import order_no
from core.service import Done, TicketService
from core.webhook_calls import DEAD, MAX_ATTEMPTS, PENDING, SENT, WebhookRoutes
from core.workorder_changes import CLOSE, CREATE, REOPEN, REPLY, SWITCH
from store.db import Database
from store.directory import SqlDirectory, replace_org
from store.tables import webhook_call
from store.tickets import SqlTicketStore
from store.webhooks import SqlWebhookCalls, record_webhooks
from tests.fakes import FakeClock

CONFIG = Path(__file__).resolve().parents[2] / "config"
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SECRET = "k7Hq2-webhook-signing-key-0001"
ORDER_FIELDS = {
    "customer_name": "李先生",
    "category": "consult",
    "priority": "normal",
    "description": "打不开",
}
LEAVE_FIELDS = {"start_date": "2026-12-01", "end_date": "2026-12-02", "days": 2, "reason": "家里有事"}
APPS = (
    ApiApp("crm", "t1", None, webhook_url="https://crm.example.com/hook?k=1", webhook_secret=SECRET),
    ApiApp("leave-only", "t2", frozenset({1}), webhook_url="https://lo.example.com/h", webhook_secret=SECRET),
    ApiApp("demo", "t3", frozenset({1}), webhook_url="https://demo.example.com/h", webhook_secret=SECRET),
    ApiApp("quiet", "t4", None),
)
LEASE = 60.0


@pytest.fixture(scope="module")
def config() -> LoadedConfig:
    return load_config(CONFIG, env={})


@pytest.fixture(scope="module")
def routes(config: LoadedConfig) -> WebhookRoutes:
    return webhook_routes(APPS, config.workflows, corp_id="ww-corp-1")


@pytest.fixture
async def service(db: Database, config: LoadedConfig, routes: WebhookRoutes) -> TicketService:
    await replace_org(db, config.org, "config")
    store = SqlTicketStore(db, routes)
    return TicketService(store, Catalog(config.workflows), SqlDirectory(db), FakeClock(T0))


async def _order(service: TicketService) -> int:
    done = await service.create(c.Create("liuyang", 3, 351, ORDER_FIELDS))
    assert isinstance(done, Done), done
    return done.ticket.id


async def _ok(service: TicketService, ticket_id: int, cmd: c.Command) -> None:
    assert isinstance(await service.execute(ticket_id, cmd), Done)


async def _count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(webhook_call))).scalar_one())


def test_routes_follow_webhook_urls_and_grants(routes: WebhookRoutes) -> None:
    # crm: every workflow; demo: workflow 3 grants it (permissions.api_apps); leave-only: not
    # granted the work-order workflow; quiet: no webhook_url
    assert [s.app for s in routes.for_workflow(3)] == ["crm", "demo"]
    assert routes.for_workflow(1) == ()  # the leave request is no work order
    assert routes.workorder_workflow_ids == frozenset({3})


async def test_each_change_writes_its_calls_with_it(service: TicketService, db: Database) -> None:
    ticket_id = await _order(service)
    await _ok(service, ticket_id, c.Accept("xuli"))  # no webhook
    await _ok(service, ticket_id, c.Handle("xuli", 352, suggestion="已解决", extra={"is_show": 1}))
    await _ok(service, ticket_id, c.Comment("xuli", "回访时确认"))
    await _ok(service, ticket_id, c.Handle("liuyang", 356, {"satisfaction": "satisfied"}))
    await _ok(service, ticket_id, c.Reopen("liuyang", "又坏了"))
    calls = await SqlWebhookCalls(db).for_ticket(ticket_id)
    crm = [w for w in calls if w.app == "crm"]
    assert [w.status for w in crm] == [CREATE, SWITCH, REPLY, CLOSE, REOPEN]
    assert [w.status for w in calls if w.app == "demo"] == [CREATE, SWITCH, REPLY, CLOSE, REOPEN]
    assert {w.app for w in calls} == {"crm", "demo"}
    first = crm[0]
    assert (first.state, first.retry_count, first.url, first.ticket_id) == (
        PENDING,
        0,
        "https://crm.example.com/hook?k=1",
        ticket_id,
    )
    assert first.dedupe_key == f"crm:{ticket_id}:0000000001.0:create"
    assert dict(first.payload) == {
        "id": first.id,
        "corp_id": "ww-corp-1",
        "create_time": int(T0.timestamp()),
        "type": "event",
        "event": "work_order_change",
        "status": "create",
        "retry_count": 0,
        "msg_data": {"order_no": order_no(ticket_id), "staff_id": "liuyang"},
    }
    switch = crm[1].payload["msg_data"]
    assert (switch["staff_id"], switch["handler_id"], switch["cc_list"], switch["is_show"]) == (
        "xuli",
        "liuyang",
        ["wujuan"],
        1,
    )
    assert len({w.id for w in calls}) == len(calls) == 10  # a uuid each
    async with db.read() as conn:  # the secret is never stored
        everything = repr([dict(r._mapping) for r in await conn.execute(select(webhook_call))])
    assert SECRET not in everything


async def test_tickets_that_are_no_work_orders_write_nothing(service: TicketService, db: Database) -> None:
    done = await service.create(c.Create("liuyang", 1, 151, LEAVE_FIELDS))
    assert isinstance(done, Done), done
    assert await _count(db) == 0


async def test_no_store_routes_no_calls(db: Database, config: LoadedConfig) -> None:
    await replace_org(db, config.org, "config")
    plain = TicketService(SqlTicketStore(db), Catalog(config.workflows), SqlDirectory(db), FakeClock(T0))
    assert isinstance(await plain.create(c.Create("liuyang", 3, 351, ORDER_FIELDS)), Done)
    assert await _count(db) == 0


def _create_decision(config: LoadedConfig) -> Decision:
    wf = next(w for w in config.workflows if w.id == 3)
    out = decide(None, wf, c.Create("liuyang", 3, 351, ORDER_FIELDS), Context(T0, config.org))
    assert isinstance(out, Decision)
    return out


async def test_calls_roll_back_with_their_change(
    db: Database, config: LoadedConfig, routes: WebhookRoutes
) -> None:
    await replace_org(db, config.org, "config")
    decision = _create_decision(config)

    async def save_then_fail() -> None:
        async with SqlTicketStore(db, routes).transaction() as tx:
            await tx.insert(decision, "loonflow")
            assert await _count(db) == 0  # not visible outside the transaction before it commits
            raise RuntimeError("the transaction fails after the save")

    with pytest.raises(RuntimeError):
        await save_then_fail()
    assert await _count(db) == 0
    async with SqlTicketStore(db, routes).transaction() as tx:
        await tx.insert(decision, "loonflow")
    assert await _count(db) == 2  # create, to crm and demo


async def test_writing_the_same_change_again_adds_nothing(
    db: Database, config: LoadedConfig, routes: WebhookRoutes
) -> None:
    decision = _create_decision(config)
    async with SqlTicketStore(db, routes).transaction() as tx:
        stored = await tx.insert(decision, "loonflow")
    assert await _count(db) == 2
    for _ in range(2):  # a replay of the same change (same ticket version)
        async with db.write() as conn:
            await record_webhooks(conn, db.dialect, routes, stored, decision, 1)
    assert await _count(db) == 2
    async with db.write() as conn:  # a later version is another change
        await record_webhooks(conn, db.dialect, routes, stored, decision, 2)
    assert await _count(db) == 4


# ------------------------------------------------------------------------------------ claims


async def test_a_claim_is_one_workers_until_its_lease_runs_out(service: TicketService, db: Database) -> None:
    await _order(service)
    calls = SqlWebhookCalls(db)
    now = T0 + timedelta(seconds=1)
    mine = await calls.claim_due("w1", now, 10, LEASE)
    assert len(mine) == 2 and {w.claimed_by for w in mine} == {"w1"}
    assert await calls.claim_due("w2", now, 10, LEASE) == []
    assert not await calls.mark_sent(mine[0].id, "w2", now, 200)  # not w2's
    later = now + timedelta(seconds=LEASE + 1)
    taken = await calls.claim_due("w2", later, 10, LEASE)  # w1 died: its lease ran out
    assert {w.id for w in taken} == {w.id for w in mine}
    assert not await calls.mark_sent(mine[0].id, "w1", later, 200)  # w1 lost it
    assert await calls.mark_sent(mine[0].id, "w2", later, 204)
    [sent] = await calls.find([mine[0].id])
    assert (sent.state, sent.sent_at, sent.response_status, sent.claimed_by) == (SENT, later, 204, "")


async def test_retries_count_and_end_dead(service: TicketService, db: Database) -> None:
    await _order(service)
    calls = SqlWebhookCalls(db)
    now = T0
    states: list[str | None] = []
    target = (await calls.list_calls(limit=1))[0].id
    for attempt in range(MAX_ATTEMPTS):
        due = [w for w in await calls.claim_due("w", now, 10, LEASE) if w.id == target]
        assert len(due) == 1 and due[0].retry_count == attempt
        states.append(
            await calls.retry_later(target, "w", "HTTP 502", now + timedelta(minutes=1), response_status=502)
        )
        now += timedelta(minutes=2)
        for other in await calls.list_calls(state=PENDING):
            if other.id != target and other.claimed_by:
                await calls.mark_sent(other.id, "w", now, 200)
    assert states == [PENDING] * (MAX_ATTEMPTS - 1) + [DEAD]
    [dead] = await calls.find([target])
    assert (dead.state, dead.retry_count, dead.last_error, dead.response_status) == (
        DEAD,
        MAX_ATTEMPTS,
        "HTTP 502",
        502,
    )
    assert [w for w in await calls.claim_due("w", now + timedelta(days=1), 10, LEASE) if w.id == target] == []
    assert await calls.requeue([target, "00000000-0000-0000-0000-000000000000"], now) == [target]
    [again] = await calls.find([target])
    assert (again.state, again.retry_count, again.next_attempt_at) == (PENDING, 0, now)
    assert await calls.requeue([target], now) == []  # only dead ones


async def test_mark_dead_counts_an_attempt_only_when_one_was_made(
    service: TicketService, db: Database
) -> None:
    await _order(service)
    calls = SqlWebhookCalls(db)
    a, b = await calls.claim_due("w", T0, 10, LEASE)
    assert await calls.mark_dead(a.id, "w", T0, "HTTP 404", response_status=404)
    assert await calls.mark_dead(b.id, "w", T0, "no longer subscribed", attempted=False)
    found = {w.id: w for w in await calls.find([a.id, b.id])}
    assert (found[a.id].state, found[a.id].retry_count, found[a.id].response_status) == (DEAD, 1, 404)
    assert (found[b.id].state, found[b.id].retry_count) == (DEAD, 0)
    assert [w.id for w in await calls.list_calls(state=DEAD)] != []
    assert await calls.list_calls(state=SENT) == []


async def test_one_apps_calls_of_one_order_are_handed_out_in_order(
    service: TicketService, db: Database
) -> None:
    first, second = await _order(service), await _order(service)
    await _ok(service, first, c.Comment("liuyang", "补充一下"))
    await _ok(service, first, c.Comment("liuyang", "再补充"))
    calls = SqlWebhookCalls(db)
    now = T0 + timedelta(seconds=1)
    got = await calls.claim_due("w", now, 100, LEASE)
    # per app, only the oldest pending call of each order: the creates
    assert sorted((w.app, w.ticket_id, w.status) for w in got) == [
        ("crm", first, CREATE),
        ("crm", second, CREATE),
        ("demo", first, CREATE),
        ("demo", second, CREATE),
    ]
    crm_first = next(w for w in got if (w.app, w.ticket_id) == ("crm", first))
    for w in got:
        if w is not crm_first:
            assert await calls.mark_sent(w.id, "w", now, 200)
    assert await calls.retry_later(crm_first.id, "w", "HTTP 503", now, response_status=503) == PENDING
    # demo goes on with order `first`; crm's replies wait for crm's create (due again at once)
    again = await calls.claim_due("w", now, 100, LEASE)
    assert sorted((w.app, w.status) for w in again) == [("crm", CREATE), ("demo", REPLY)]
    assert [w.id for w in again if w.app == "crm"] == [crm_first.id]
    assert await calls.mark_dead(crm_first.id, "w", now, "HTTP 410", response_status=410)
    demo_reply = next(w for w in again if w.app == "demo")
    assert await calls.mark_sent(demo_reply.id, "w", now, 200)
    # a dead call holds nothing back
    third = await calls.claim_due("w", now, 100, LEASE)
    assert sorted((w.app, w.status, w.payload["msg_data"]["content"]["text"]) for w in third) == [
        ("crm", REPLY, "补充一下"),
        ("demo", REPLY, "再补充"),
    ]


POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@POSTGRES_ONLY
async def test_two_workers_claiming_at_once_get_disjoint_calls(
    database_url: str, service: TicketService, db: Database
) -> None:
    for _ in range(15):
        await _order(service)
    others = [Database(database_url) for _ in range(5)]
    try:
        stores = [SqlWebhookCalls(d) for d in [db, *others]]
        results = await asyncio.gather(
            *(store.claim_due(f"w{i}", T0 + timedelta(seconds=1), 7, LEASE) for i, store in enumerate(stores))
        )
    finally:
        for d in others:
            await d.dispose()
    ids = [w.id for batch in results for w in batch]
    assert len(ids) == len(set(ids)) == 30
    owners = {w.id: w.claimed_by for w in await SqlWebhookCalls(db).list_calls(limit=100)}
    assert all(owners[w.id] == f"w{i}" for i, batch in enumerate(results) for w in batch)


@POSTGRES_ONLY
async def test_a_call_locked_by_another_worker_is_skipped_not_waited_for(
    database_url: str, service: TicketService, db: Database
) -> None:
    await _order(service)
    a, b = sorted(await SqlWebhookCalls(db).list_calls(limit=10), key=lambda w: w.dedupe_key)
    other = Database(database_url)
    try:
        async with other.write() as conn:  # another worker is in the middle of claiming `a`
            c_ = webhook_call.c
            await conn.execute(select(c_.id).where(c_.id == a.id).with_for_update())
            async with asyncio.timeout(10):  # a guard against a hang, never a wait
                got = await SqlWebhookCalls(db).claim_due("w1", T0, 10, LEASE)
        assert [w.id for w in got] == [b.id]
    finally:
        await other.dispose()
