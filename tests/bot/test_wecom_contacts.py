"""The 客户联系 reads (bot/wecom/contacts.py) against the emulator on 127.0.0.1: externalcontact/get
and /list, follow_user pages, the token refresh, and each errcode mapped to its error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.wecom.client import LOCAL_REFUSAL, NoPermission, WeComBusy, WeComClient, WeComError
from bot.wecom.contacts import (
    ExternalContacts,
    InvalidExternalUserId,
    NoCustomerPermission,
    NotExternalContact,
    UnknownMember,
    customer_of,
)
from core.workorder import Customer
from emulator.wecom import WeComEmulator
from tests.fakes import FakeClock

CORP = "ww-corp-1"
AGENT = 1000002
SECRET = "s3cret-contacts"
ORG: dict[str, list[dict[str, Any]]] = {
    "departments": [{"id": 1, "name": "总部", "parentid": 0}],
    "users": [
        {"userid": "LiuYang", "name": "刘洋", "department": [1]},
        {"userid": "XuLi", "name": "徐丽", "department": [1]},
        {"userid": "Idle", "name": "没有客户", "department": [1]},
    ],
}
DADAGUAI = "wmDaDaGuai0001"
CUSTOMERS: list[dict[str, Any]] = [
    {
        "external_userid": DADAGUAI,
        "name": "大大怪",
        "type": 1,
        "gender": 1,
        "unionid": "ozU1",
        "follow_user": [
            {"userid": "LiuYang", "remark": "老客户", "createtime": 1700000000},
            {"userid": "XuLi", "createtime": 1700000100},
        ],
    },
    {
        "external_userid": "woStar0002",
        "name": "王经理",
        "type": 2,
        "corp_name": "星星科技",
        "follow_user": [{"userid": "XuLi", "createtime": 1700000200}],
    },
    {"external_userid": "wmGone0003", "name": "走了", "follow_user": []},
]


@dataclass
class Env:
    emulator: WeComEmulator
    server: TestServer
    session: aiohttp.ClientSession
    clock: FakeClock
    delays: list[float] = field(default_factory=list)

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)

    def contacts(self) -> ExternalContacts:
        client = WeComClient(
            self.session,
            api_base=str(self.server.make_url("")),
            corp_id=CORP,
            corp_secret=SECRET,
            agent_id=AGENT,
            clock=self.clock,
            sleep=self.sleep,
        )
        return ExternalContacts(client)


@pytest.fixture
async def env(aiohttp_server: Any) -> AsyncIterator[Env]:
    clock = FakeClock()
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, org=ORG)
    emulator.contacts.load(CUSTOMERS)
    server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
    async with aiohttp.ClientSession() as session:
        yield Env(emulator, server, session, clock)


async def test_get_maps_the_contact_and_its_follow_users(env: Env) -> None:
    got = await env.contacts().get(DADAGUAI)
    assert (got.external_userid, got.name, got.type, got.gender, got.unionid) == (
        DADAGUAI,
        "大大怪",
        1,
        1,
        "ozU1",
    )
    assert [f["userid"] for f in got.follow_users] == ["LiuYang", "XuLi"]
    assert got.follow_users[0]["remark"] == "老客户" and got.follow_users[0]["createtime"] == 1700000000
    assert got.deleted is False
    star = await env.contacts().get("woStar0002")
    assert (star.corp_name, star.type) == ("星星科技", 2)


async def test_follow_users_are_read_across_every_page(env: Env) -> None:
    env.emulator.contacts.follow_page = 1
    got = await env.contacts().get(DADAGUAI)
    assert [f["userid"] for f in got.follow_users] == ["LiuYang", "XuLi"]
    assert env.emulator.records.calls.count("/cgi-bin/externalcontact/get") == 2


async def test_list_gives_a_members_customers_and_none_for_84061(env: Env) -> None:
    contacts = env.contacts()
    assert await contacts.ids_of("XuLi") == [DADAGUAI, "woStar0002"]
    assert await contacts.ids_of("LiuYang") == [DADAGUAI]
    assert await contacts.ids_of("Idle") == []  # WeCom answers 84061 for a member without customers
    assert [f.errcode for f in env.emulator.records.failures] == [84061]
    with pytest.raises(UnknownMember) as exc:
        await contacts.ids_of("Ghost")
    assert exc.value.errcode == 60111


async def test_the_follow_user_list_names_who_may_have_customers(env: Env) -> None:
    contacts = env.contacts()
    assert await contacts.follow_user_ids() == ["LiuYang", "XuLi"]  # Idle has no customer contact
    env.emulator.forbidden_paths.add("/cgi-bin/externalcontact/get_follow_user_list")
    with pytest.raises(NoCustomerPermission) as exc:
        await contacts.follow_user_ids()
    assert exc.value.errcode == 48002 and "客户联系" in str(exc.value)


async def test_no_relation_and_unknown_ids_are_not_external_contacts(env: Env) -> None:
    contacts = env.contacts()
    with pytest.raises(NotExternalContact) as gone:
        await contacts.get("wmGone0003")
    assert gone.value.errcode == 84061 and "no member" in str(gone.value)
    with pytest.raises(InvalidExternalUserId) as unknown:
        await contacts.get("wmNobody")
    assert unknown.value.errcode == 40096
    assert isinstance(unknown.value, NotExternalContact)


async def test_missing_permission_is_a_clear_no_permission(env: Env) -> None:
    env.emulator.forbidden_paths.add("/cgi-bin/externalcontact/get")
    with pytest.raises(NoCustomerPermission) as exc:
        await env.contacts().get(DADAGUAI)
    assert isinstance(exc.value, NoPermission) and exc.value.errcode == 48002
    assert "客户联系" in str(exc.value)
    env.emulator.fail_next(1, 84074, path="/cgi-bin/externalcontact/list")
    with pytest.raises(NoCustomerPermission):
        await env.contacts().ids_of("XuLi")


async def test_empty_ids_are_refused_without_asking_wecom(env: Env) -> None:
    for call in (env.contacts().get(""), env.contacts().ids_of(""), env.contacts().get("x" * 129)):
        with pytest.raises(WeComError) as exc:
            await call
        assert exc.value.errcode == LOCAL_REFUSAL
    assert env.emulator.records.calls == []


async def test_an_expired_token_is_refreshed_and_busy_codes_retried(env: Env) -> None:
    contacts = env.contacts()
    await contacts.get(DADAGUAI)
    env.emulator.expire_all_tokens()
    assert (await contacts.get(DADAGUAI)).name == "大大怪"
    assert env.emulator.records.gettoken_calls == 2
    env.emulator.fail_next(3, -1, path="/cgi-bin/externalcontact/get")
    with pytest.raises(WeComBusy):
        await contacts.get(DADAGUAI)
    assert env.delays == [0.5, 1.0]


def test_customer_of_reads_what_wecom_gives_defensively() -> None:
    got = customer_of({"external_userid": "wm1", "name": 5, "type": "2", "gender": True}, [])
    assert got == Customer("wm1", "", type=2, gender=0, deleted=True)
