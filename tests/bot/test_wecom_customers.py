"""Customers (WeCom external contacts) kept from change_external_contact callbacks, end to end
through the real app on SQLite and PostgreSQL: a member of the emulator adds, edits and deletes a
customer, the emulator pushes the encrypted callback, the app reads the contact back with
externalcontact/get and keeps it. Also the parsing of the event and the sync alone, with fakes."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app import RUNTIME, create_app
from bot.wecom.callback import parse_message
from bot.wecom.client import NoPermission, WeComBusy, WeComError, WeComUnavailable
from bot.wecom.contacts import InvalidExternalUserId, NotExternalContact
from bot.wecom.customers import CustomerSync, RetryLater
from bot.wecom.routes import WECOM_CALLBACKS
from config.settings import load_settings
from core.workorder import Customer
from emulator.chaos import Redelivery
from emulator.wecom import WeComEmulator, send_callback
from emulator.wecom_contacts import change_external_contact_xml
from store.customers import SqlCustomers
from store.tables import customer, inbox
from tests.fakes import FakeClock

CONFIG = Path(__file__).resolve().parents[2] / "config"
CORP = "wwcorp0123456789"
AGENT = 1000002
SECRET = "app-secret"
TOKEN = "callback-token-77"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WAIT = 10.0  # an upper bound for awaiting the app's tasks, never a sleep
ORG: dict[str, list[dict[str, Any]]] = {
    "departments": [{"id": 1, "name": "总部", "parentid": 0}],
    "users": [
        {"userid": "LiuYang", "name": "刘洋", "department": [1]},
        {"userid": "XuLi", "name": "徐丽", "department": [1]},
    ],
}
DADAGUAI = "wmDaDaGuai0001"


@dataclass
class Bot:
    emulator: WeComEmulator
    clock: FakeClock
    client: TestClient[web.Request, web.Application]
    app: web.Application
    redelivery: Redelivery

    @property
    def customers(self) -> SqlCustomers:
        return SqlCustomers(self.app[RUNTIME].db)

    async def settle(self) -> None:
        async with asyncio.timeout(WAIT):
            while tasks := set(self.app[WECOM_CALLBACKS].tasks):
                await asyncio.gather(*tasks, return_exceptions=True)

    def tick(self) -> None:
        """The next change happens a second later (WeCom's CreateTime has one-second steps)."""
        self.clock.advance(seconds=1)

    async def inbox_rows(self) -> list[Any]:
        async with self.app[RUNTIME].db.read() as conn:
            return list((await conn.execute(select(inbox).order_by(inbox.c.id))).mappings())

    async def updated_at(self, external_userid: str) -> Any:
        async with self.app[RUNTIME].db.read() as conn:
            return (
                await conn.execute(
                    select(customer.c.updated_at).where(customer.c.external_userid == external_userid)
                )
            ).scalar_one()

    async def post(self, xml: str) -> int:
        url = str(self.client.make_url("/wecom/callback"))
        answer = await send_callback(
            self.client.session, url, xml, token=TOKEN, aes_key=AES_KEY, corp_id=CORP
        )
        return answer.status


@pytest.fixture
async def bot(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Bot:
    clock = FakeClock()
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, org=ORG)
    server = await aiohttp_server(emulator.app(), access_log=None)
    env = {
        "TICKETBOT_WECOM_CORP_ID": CORP,
        "TICKETBOT_WECOM_AGENT_ID": str(AGENT),
        "TICKETBOT_WECOM_SECRET": SECRET,
        "TICKETBOT_WECOM_TOKEN": TOKEN,
        "TICKETBOT_WECOM_AES_KEY": AES_KEY,
        "TICKETBOT_WECOM_API_BASE": str(server.make_url("")).rstrip("/"),
        "TICKETBOT_PUBLIC_URL": "https://bot.example.com",
    }
    settings = load_settings(env=env, database_url=database_url, config_dir=CONFIG)
    app = await create_app(settings)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    redelivery = Redelivery()
    emulator.contacts.connect(
        str(client.make_url("/wecom/callback")), TOKEN, AES_KEY, deliver=redelivery.deliver
    )
    result = Bot(emulator, clock, client, app, redelivery)
    await result.settle()  # the start-up recovery
    return result


async def _add_dadaguai(bot: Bot) -> None:
    change = await bot.emulator.contacts.add(
        "LiuYang", {"external_userid": DADAGUAI, "name": "大大怪", "gender": 1}, follow={"remark": "老客户"}
    )
    assert change.bot_status == 200
    await bot.settle()


async def test_an_add_event_stores_the_customer(bot: Bot) -> None:
    await _add_dadaguai(bot)
    got = await bot.customers.get(DADAGUAI)
    assert got is not None and (got.name, got.gender, got.type, got.deleted) == ("大大怪", 1, 1, False)
    assert [(f["userid"], f["remark"]) for f in got.follow_users] == [("LiuYang", "老客户")]
    assert [r["status"] for r in await bot.inbox_rows()] == ["done"]


async def test_an_edit_updates_it(bot: Bot) -> None:
    await _add_dadaguai(bot)
    bot.tick()
    await bot.emulator.contacts.edit(
        "LiuYang",
        DADAGUAI,
        contact={"name": "大大怪将军"},
        follow={"remark": "大客户", "description": "售后"},
    )
    await bot.settle()
    got = await bot.customers.get(DADAGUAI)
    assert got is not None and got.name == "大大怪将军"
    assert [(f["remark"], f["description"]) for f in got.follow_users] == [("大客户", "售后")]


async def test_a_delete_marks_it_deleted_once_nobody_follows_it(bot: Bot) -> None:
    await _add_dadaguai(bot)
    bot.tick()
    await bot.emulator.contacts.add("XuLi", {"external_userid": DADAGUAI})
    await bot.settle()
    got = await bot.customers.get(DADAGUAI)
    assert got is not None and [f["userid"] for f in got.follow_users] == ["LiuYang", "XuLi"]

    bot.tick()
    await bot.emulator.contacts.delete("LiuYang", DADAGUAI)  # XuLi still has them
    await bot.settle()
    got = await bot.customers.get(DADAGUAI)
    assert got is not None and not got.deleted and [f["userid"] for f in got.follow_users] == ["XuLi"]

    bot.tick()
    await bot.emulator.contacts.deleted_by_customer("XuLi", DADAGUAI)  # WeCom now answers 84061
    await bot.settle()
    got = await bot.customers.get(DADAGUAI)
    assert got is not None and got.deleted and got.name == "大大怪"  # kept for the work orders
    assert {r["status"] for r in await bot.inbox_rows()} == {"done"}

    bot.tick()
    await bot.emulator.contacts.add("XuLi", {"external_userid": DADAGUAI})  # added again: live again
    await bot.settle()
    got = await bot.customers.get(DADAGUAI)
    assert got is not None and not got.deleted


async def test_a_redelivered_event_changes_nothing_more(bot: Bot) -> None:
    bot.redelivery.duplicate_next(1)
    await _add_dadaguai(bot)
    assert bot.redelivery.duplicates_sent == 1
    stamp = await bot.updated_at(DADAGUAI)
    bot.emulator.contacts.contacts[DADAGUAI]["name"] = "改了名，没有事件"
    assert await bot.redelivery.replay() == 1  # the same add, late: the inbox knows it
    await bot.settle()
    assert len(await bot.inbox_rows()) == 1
    got = await bot.customers.get(DADAGUAI)
    assert got is not None and got.name == "大大怪" and await bot.updated_at(DADAGUAI) == stamp


async def test_running_an_event_again_writes_nothing(bot: Bot) -> None:
    """At-least-once: a row run a second time (its mark was lost) finds nothing to change."""
    await _add_dadaguai(bot)
    stamp = await bot.updated_at(DADAGUAI)
    (row,) = await bot.inbox_rows()
    calls = len(bot.emulator.records.calls)
    await bot.app[WECOM_CALLBACKS].worker.on_event(parse_message(row["payload"], CORP))  # the app's processor
    assert bot.emulator.records.calls[calls:] == ["/cgi-bin/externalcontact/get"]  # read again from WeCom
    assert await bot.updated_at(DADAGUAI) == stamp


@pytest.mark.parametrize("external_userid", ["wmNobody", "wmGone"])
async def test_an_event_for_a_contact_wecom_has_no_relation_with_is_done_without_a_crash(
    bot: Bot, external_userid: str, caplog: pytest.LogCaptureFixture
) -> None:
    bot.emulator.contacts.load([{"external_userid": "wmGone", "name": "走了"}])  # 84061; wmNobody: 40096
    xml = change_external_contact_xml(
        corp_id=CORP,
        change_type="add_external_contact",
        userid="LiuYang",
        external_userid=external_userid,
        create_time=1700000000,
    )
    with caplog.at_level(logging.INFO, logger="ticketbot.wecom.customers"):
        assert await bot.post(xml) == 200
        await bot.settle()
    assert await bot.customers.get(external_userid) is None
    assert [r["status"] for r in await bot.inbox_rows()] == ["done"]
    (line,) = [r for r in caplog.records if r.getMessage() == "wecom customer event processed"]
    assert line.__dict__["external_userid"] == external_userid and line.__dict__["outcome"] == "gone-unknown"
    assert line.__dict__["change_type"] == "add_external_contact"


async def test_a_failure_a_retry_can_fix_leaves_the_event_for_the_inbox(bot: Bot) -> None:
    bot.emulator.forbidden_paths.add("/cgi-bin/externalcontact/get")  # 48002 until the admin grants it
    await bot.emulator.contacts.add("LiuYang", {"external_userid": DADAGUAI, "name": "大大怪"})
    await bot.settle()
    (row,) = await bot.inbox_rows()
    assert (row["status"], row["attempts"]) == ("pending", 1) and "48002" in row["last_error"]
    assert await bot.customers.get(DADAGUAI) is None

    bot.emulator.forbidden_paths.clear()
    callbacks = bot.app[WECOM_CALLBACKS]
    callbacks.worker.clock = FakeClock(row["next_attempt_at"] + timedelta(seconds=1))  # the retry is due
    await callbacks.recover_and_drain()
    assert [r["status"] for r in await bot.inbox_rows()] == ["done"]
    got = await bot.customers.get(DADAGUAI)
    assert got is not None and got.name == "大大怪"


# ---------------------------------------------------------------- parsing


def _xml(
    change_type: str, external_userid: str, userid: str = "LiuYang", create_time: int = 1700000000
) -> str:
    return change_external_contact_xml(
        corp_id=CORP,
        change_type=change_type,
        userid=userid,
        external_userid=external_userid,
        create_time=create_time,
        state="qr-1",
    )


def test_the_event_carries_its_change_and_two_customers_in_one_second_are_two_events() -> None:
    one = parse_message(_xml("add_external_contact", "wmA"), CORP)
    assert (one.msg_type, one.event, one.from_user) == ("event", "change_external_contact", "sys")
    assert (one.change_type, one.user_id, one.external_user_id) == ("add_external_contact", "LiuYang", "wmA")
    keys = {
        one.dedupe_key,
        parse_message(_xml("add_external_contact", "wmB"), CORP).dedupe_key,
        parse_message(_xml("edit_external_contact", "wmA"), CORP).dedupe_key,
        parse_message(_xml("add_external_contact", "wmA", userid="XuLi"), CORP).dedupe_key,
    }
    assert len(keys) == 4
    assert parse_message(_xml("add_external_contact", "wmA"), CORP).dedupe_key == one.dedupe_key


# ---------------------------------------------------------------- the sync alone, with fakes


class _Contacts:
    def __init__(self, answer: Customer | Exception) -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def get(self, external_userid: str) -> Customer:
        self.asked.append(external_userid)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class _Customers:
    def __init__(self, *stored: Customer) -> None:
        self.rows = {c.external_userid: c for c in stored}
        self.writes: list[str] = []

    async def upsert(self, c: Customer, now: Any) -> None:
        self.writes.append(f"upsert {c.external_userid}")
        self.rows[c.external_userid] = c

    async def mark_deleted(self, external_userid: str, now: Any) -> bool:
        self.writes.append(f"deleted {external_userid}")
        return external_userid in self.rows

    async def get(self, external_userid: str) -> Customer | None:
        return self.rows.get(external_userid)

    async def many(self, ids: Any) -> dict[str, Customer]:
        return {}


def _event(change_type: str = "del_external_contact", external_userid: str = "wmA") -> Any:
    return parse_message(_xml(change_type, external_userid), CORP)


LIVE = Customer("wmA", "甲", follow_users=({"userid": "LiuYang"},))


@pytest.mark.parametrize(
    "error",
    [
        WeComUnavailable("no answer from /cgi-bin/externalcontact/get in time"),
        WeComBusy(-1, "system busy"),
        NoPermission(48002, "api forbidden"),
    ],
)
async def test_what_a_retry_may_fix_is_raised_for_the_inbox(error: WeComError) -> None:
    customers = _Customers(LIVE)
    with pytest.raises(RetryLater) as exc:
        await CustomerSync(_Contacts(error), customers, FakeClock()).on_event(_event())
    assert exc.value.status == 503 and "wmA" in exc.value.reason
    assert customers.writes == []


async def test_what_wecom_would_refuse_again_is_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    customers = _Customers(LIVE)
    with caplog.at_level(logging.ERROR, logger="ticketbot.wecom.customers"):
        await CustomerSync(
            _Contacts(WeComError(40058, "invalid parameter")), customers, FakeClock()
        ).on_event(_event())
    assert customers.writes == [] and "wecom customer not read" in caplog.text


@pytest.mark.parametrize("gone", [NotExternalContact(84061, "no"), InvalidExternalUserId(40096, "no")])
async def test_a_contact_wecom_no_longer_relates_to_is_marked_deleted_once(gone: WeComError) -> None:
    customers = _Customers(LIVE)
    sync = CustomerSync(_Contacts(gone), customers, FakeClock())
    await sync.on_event(_event())
    customers.rows["wmA"] = Customer("wmA", "甲", deleted=True)
    await sync.on_event(_event())  # again: already deleted
    assert customers.writes == ["deleted wmA"]


async def test_events_without_a_usable_contact_or_of_unknown_types_are_ignored() -> None:
    contacts, customers = _Contacts(LIVE), _Customers()
    sync = CustomerSync(contacts, customers, FakeClock())
    await sync.on_event(_event("msg_audit_approved"))
    await sync.on_event(_event(external_userid=""))
    await sync.on_event(_event(external_userid="w" * 200))
    assert contacts.asked == [] and customers.writes == []


async def test_concurrent_events_of_one_contact_run_one_at_a_time() -> None:
    class Slow(_Contacts):
        def __init__(self) -> None:
            super().__init__(LIVE)
            self.inside = 0
            self.most = 0
            self.entered = asyncio.Event()
            self.gate = asyncio.Event()

        async def get(self, external_userid: str) -> Customer:
            self.inside += 1
            self.most = max(self.most, self.inside)
            self.entered.set()
            await self.gate.wait()
            self.inside -= 1
            return await super().get(external_userid)

    contacts, customers = Slow(), _Customers()
    sync = CustomerSync(contacts, customers, FakeClock())
    tasks = [asyncio.create_task(sync.on_event(_event("edit_external_contact"))) for _ in range(3)]
    await contacts.entered.wait()
    contacts.gate.set()
    await asyncio.gather(*tasks)
    assert contacts.most == 1 and customers.writes == ["upsert wmA"]
    assert sync._slots == {}
