"""What the work-order side keeps besides tickets: the customer a work order is about (a WeCom
external contact), chat records linked to it, and the ports the work-order API, the chat bot and the
sidebar use to reach them (implemented in store/)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

CUSTOMER = 1  # relation_type of a work order about a customer (relation_id: its external_userid)


@dataclass(frozen=True, slots=True)
class Customer:
    """A WeCom external contact (客户). `follow_users`: the staff who added them
    ({userid, remark, createtime, ...} as `externalcontact/get` gives them)."""

    external_userid: str
    name: str = ""
    avatar: str = ""
    corp_name: str = ""
    type: int = 0  # 1 a WeChat user, 2 a WeCom user of another company
    gender: int = 0
    unionid: str = ""
    follow_users: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)
    deleted: bool = False  # no staff member has them as a contact any more


@dataclass(frozen=True, slots=True)
class ChatRecord:
    """One chat message kept for work orders. `id` is the source's msgid; `source` is archive
    (会话存档), chat (forwarded / quoted to the bot) or api."""

    id: str
    source: str
    sent_at: datetime
    from_id: str = ""
    to_ids: tuple[str, ...] = ()
    room_id: str = ""  # "" for a 1:1 chat
    msg_type: str = "text"
    content: Mapping[str, Any] = field(default_factory=dict, hash=False)  # {"text": ...}, {"url": ...}


@dataclass(frozen=True, slots=True)
class Relation:
    """What a work order is about: `relation_type` CUSTOMER and an external_userid."""

    ticket_id: int
    relation_type: int
    relation_id: str


class Customers(Protocol):
    async def upsert(self, c: Customer, now: datetime) -> None: ...
    async def mark_deleted(self, external_userid: str, now: datetime) -> bool: ...
    async def get(self, external_userid: str) -> Customer | None: ...
    async def many(self, ids: Sequence[str]) -> dict[str, Customer]: ...


class ChatRecords(Protocol):
    async def add(self, records: Sequence[ChatRecord], now: datetime) -> int:
        """Keep the records (one kept already stays as it is); how many were new."""
        ...

    async def get(self, ids: Sequence[str]) -> list[ChatRecord]:
        """The kept records of `ids`, in the order of `ids` (unknown ids left out)."""
        ...

    async def between(self, a: str, b: str, *, limit: int = 50) -> list[ChatRecord]:
        """The latest 1:1 records between a staff userid and a customer, newest first."""
        ...

    async def link(self, ticket_id: int, msg_ids: Sequence[str], by: str, now: datetime) -> list[str]:
        """Link kept records to a work order; the ids newly linked."""
        ...

    async def linked(self, ticket_id: int) -> list[str]:
        """The work order's msg_list, in the order linked."""
        ...


class WorkOrders(Protocol):
    async def relate(self, ticket_id: int, relation_type: int, relation_id: str, now: datetime) -> Relation:
        """Set what the work order is about, once (the first relation stays); the stored one."""
        ...

    async def relations(self, ticket_ids: Sequence[int]) -> dict[int, Relation]: ...
    async def tickets_of(self, relation_type: int, relation_id: str) -> list[int]: ...
