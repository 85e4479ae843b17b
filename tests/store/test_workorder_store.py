"""Contract tests of the work-order tables' stores (customers, chat records and their links, work
order relations) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.workorder import CUSTOMER, ChatRecord, Customer, Relation
from store.chat_records import SqlChatRecords
from store.customers import SqlCustomers
from store.db import Database
from store.errors import StoreError
from store.workorders import SqlWorkOrders

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


async def test_customers_upsert_read_and_mark_deleted(db: Database) -> None:
    customers = SqlCustomers(db)
    follow = ({"userid": "LiuYang", "remark": "大客户", "createtime": 1700000000},)
    await customers.upsert(Customer("wmA", "大大怪", "http://a/0", "某公司", 1, 1, "u1", follow), NOW)
    got = await customers.get("wmA")
    assert got == Customer("wmA", "大大怪", "http://a/0", "某公司", 1, 1, "u1", follow, False)
    await customers.upsert(Customer("wmA", "大大怪2"), NOW)
    assert (await customers.get("wmA")) == Customer("wmA", "大大怪2")
    assert await customers.mark_deleted("wmA", NOW) is True
    assert await customers.mark_deleted("nobody", NOW) is False
    assert (await customers.get("wmA")).deleted is True  # type: ignore[union-attr]
    await customers.upsert(Customer("wmA", "回来了"), NOW)
    assert (await customers.get("wmA")) == Customer("wmA", "回来了")
    assert await customers.get("nobody") is None
    assert set(await customers.many(["wmA", "nobody", "wmA"])) == {"wmA"}
    with pytest.raises(StoreError):
        await customers.upsert(Customer(""), NOW)


async def test_live_customer_ids_leave_out_the_deleted(db: Database) -> None:
    customers = SqlCustomers(db)
    assert await customers.live_ids() == []
    for ext in ("wmC", "wmA", "wmB"):
        await customers.upsert(Customer(ext, ext), NOW)
    await customers.mark_deleted("wmB", NOW)
    await customers.upsert(Customer("wmD", "gone", deleted=True), NOW)
    assert await customers.live_ids() == ["wmA", "wmC"]


async def test_chat_records_are_kept_once_and_linked_once(db: Database) -> None:
    records = SqlChatRecords(db)
    first = ChatRecord("m1", "archive", NOW, "LiuYang", ("wmA",), content={"text": "你好"})
    reply = ChatRecord(
        "m2", "archive", NOW + timedelta(seconds=5), "wmA", ("LiuYang",), content={"text": "坏了"}
    )
    other = ChatRecord(
        "m3", "archive", NOW + timedelta(seconds=9), "LiuYang", ("wmB",), content={"text": "?"}
    )
    group = ChatRecord("m4", "archive", NOW, "LiuYang", ("wmA",), room_id="r1")
    assert await records.add([first, reply, other, group], NOW) == 4
    assert await records.add([first, ChatRecord("m1", "chat", NOW, "x")], NOW) == 0  # kept as it was
    assert await records.get(["m2", "zz", "m1"]) == [reply, first]
    assert await records.between("LiuYang", "wmA") == [reply, first]  # 1:1 only, newest first
    assert await records.between("wmA", "LiuYang", limit=1) == [reply]

    assert await records.link(7, ["m1", "m2", "m1"], "LiuYang", NOW) == ["m1", "m2"]
    assert await records.link(7, ["m2", "m3"], "LiuYang", NOW + timedelta(seconds=1)) == ["m3"]
    assert await records.linked(7) == ["m1", "m2", "m3"]
    assert await records.linked(8) == []
    with pytest.raises(StoreError, match="source"):
        await records.add([ChatRecord("m9", "fax", NOW)], NOW)


async def test_work_order_relations(db: Database) -> None:
    orders = SqlWorkOrders(db)
    await orders.relate(1, CUSTOMER, "wmA", NOW)
    await orders.relate(2, CUSTOMER, "wmA", NOW)
    assert await orders.relate(2, CUSTOMER, "wmB", NOW) == Relation(2, 1, "wmA")  # the first one stays
    assert await orders.relations([1, 2, 3]) == {1: Relation(1, 1, "wmA"), 2: Relation(2, 1, "wmA")}
    assert await orders.tickets_of(CUSTOMER, "wmA") == [2, 1]
    with pytest.raises(StoreError):
        await orders.relate(3, -1, "x", NOW)
