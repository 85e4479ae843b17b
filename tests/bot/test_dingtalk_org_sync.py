"""The DingTalk directory sync against the DingTalk emulator (and, for the merge, the WeCom emulator)
on 127.0.0.1, on both databases: the mapping with department managers, merging one person's WeCom
and DingTalk identities by mobile or e-mail, ambiguity, username collisions, who stays active when
a person leaves one platform, dry runs, the mass-deactivation guard, the scheduled job and
`ticketbot org sync --from dingtalk` end to end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.dingtalk.client import DingTalkClient
from bot.dingtalk.org_sync import (
    DirectoryAccessDenied,
    run_org_sync,
    sync_org,
)
from bot.dingtalk.org_sync_job import JOB_NAME, make_org_sync_job, schedule_dingtalk_org_sync
from bot.dingtalk.processing import find_user
from bot.org_sync import (
    SMALL_DIRECTORY,
    MassDeactivationRefused,
    OrgSyncError,
    format_report,
    normalise_email,
    normalise_mobile,
    person_key,
)
from bot.scheduler import Jobs
from bot.wecom import org_sync as wecom_sync
from bot.wecom.client import WeComClient
from bot.wecom.org_sync_job import JOB_NAME as WECOM_JOB
from bot.wecom.org_sync_job import make_org_sync_job as make_wecom_job
from config.settings import Settings
from core import commands as c
from core.catalog import Catalog
from core.org import Department, Org, User, UserType
from core.service import Done, TicketService
from core.workflow import Participant, ParticipantType
from emulator.dingtalk import DingTalkEmulator
from emulator.wecom import WeComEmulator
from store.db import Database
from store.directory import SqlDirectory, load_owners, replace_org
from store.tickets import SqlTicketStore
from tests.bot.test_org_sync import _cli_env, _ticketbot
from tests.core.builders import APPROVE, OPS, SUBMIT, TL, workflow
from tests.fakes import FakeClock

APP_KEY = "ding-org-sync-key"
APP_SECRET = "ding-org-sync-secret-DO-NOT-LOG"
ROBOT = "ding-org-sync-robot"
CORP = "ww-corp-merge"
AGENT = 1000002
WECOM_SECRET = "wecom-merge-secret-DO-NOT-LOG"
LOGGER = "ticketbot.dingtalk.org_sync"
RD, QA = 510001, 510002  # DingTalk's department ids are large; its root is 1, like WeCom's


def ding_org() -> dict[str, list[dict[str, Any]]]:
    return {
        "departments": [
            {"dept_id": 1, "name": "总部", "dept_manager_userid_list": ["manager0002"]},
            {"dept_id": RD, "name": "研发中心", "parent_id": 1},
            {"dept_id": QA, "name": "测试组", "parent_id": RD},
        ],
        "users": [
            {
                "userid": "manager0002",
                "name": "张伟",
                "mobile": "+86 138 0000 0001",
                "email": " ZhangWei@Example.com ",
                "avatar": "https://static.dingtalk.com/zw.png",
                "dept_id_list": [1],
            },
            {
                "userid": "staff0003",
                "name": "李娜",
                "mobile": "8613800000002",
                "email": "lina@example.com",
                "dept_id_list": [RD],
                "leader_in_dept": [{"dept_id": RD, "leader": True}],
            },
            {
                "userid": "staff0004",
                "name": "王强",
                "mobile": "138-0000-0003",
                "org_email": "wangqiang@example.com",
                "dept_id_list": [QA, RD],
                "leader_in_dept": [{"dept_id": QA, "leader": True}],
            },
            {"userid": "staff0005", "name": "钉钉员工", "mobile": "13900000005", "dept_id_list": [QA]},
            {
                "userid": "staff0006",
                "name": "未激活",
                "mobile": "13900000006",
                "dept_id_list": [QA],
                "active": False,
            },
        ],
    }


def wecom_org() -> dict[str, list[dict[str, Any]]]:
    return {
        "departments": [
            {"id": 1, "name": "总部", "parentid": 0, "department_leader": ["ZhangWei"]},
            {"id": 2, "name": "技术部", "parentid": 1, "department_leader": ["LiNa"]},
        ],
        "users": [
            {
                "userid": "ZhangWei",
                "name": "张伟",
                "department": [1],
                "status": 1,
                "mobile": "13800000001",
                "email": "zhangwei@example.com",
            },
            {
                "userid": "LiNa",
                "name": "李娜",
                "department": [2],
                "status": 1,
                "mobile": "13800000002",
                "email": "lina@example.com",
            },
            {
                "userid": "WangQiang",
                "name": "王强",
                "department": [2],
                "status": 1,
                "mobile": "13800000003",
                "email": "WangQiang@example.com",
            },
            {
                "userid": "WeComOnly",
                "name": "仅企微",
                "department": [2],
                "status": 1,
                "mobile": "13700000009",
            },
        ],
    }


def staff(n: int) -> dict[str, dict[str, Any]]:
    """`n` active DingTalk members u01, u02, ... in the root department."""
    return {
        f"u{i:02d}": {"userid": f"u{i:02d}", "name": f"员工{i}", "dept_id_list": [1]} for i in range(1, n + 1)
    }


async def _no_sleep(_: float) -> None:
    return None


@dataclass
class Env:
    ding: DingTalkEmulator
    wecom: WeComEmulator
    ding_server: TestServer
    wecom_server: TestServer
    session: aiohttp.ClientSession
    clock: FakeClock

    @property
    def ding_url(self) -> str:
        return str(self.ding_server.make_url("")).rstrip("/")

    @property
    def wecom_url(self) -> str:
        return str(self.wecom_server.make_url("")).rstrip("/")

    def client(self) -> DingTalkClient:
        return DingTalkClient(
            self.session,
            api_base=self.ding_url,
            oapi_base=self.ding_url,
            app_key=APP_KEY,
            app_secret=APP_SECRET,
            robot_code=ROBOT,
            clock=self.clock,
            sleep=_no_sleep,
        )

    def wecom_client(self) -> WeComClient:
        return WeComClient(
            self.session,
            api_base=self.wecom_url,
            corp_id=CORP,
            corp_secret=WECOM_SECRET,
            agent_id=AGENT,
            clock=self.clock,
            sleep=_no_sleep,
        )

    def settings(self, database_url: str, **kw: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "config_dir": Path(__file__).resolve().parents[2] / "config",
            "dingtalk_app_key": APP_KEY,
            "dingtalk_app_secret": APP_SECRET,
            "dingtalk_robot_code": ROBOT,
            "dingtalk_api_base": self.ding_url,
            "dingtalk_oapi_base": self.ding_url,
        }
        return Settings(**{**values, **kw})

    def keep(self, *userids: str) -> None:
        self.ding.users = {k: v for k, v in self.ding.users.items() if k in userids}

    def calls(self, path: str) -> int:
        return self.ding.records.calls.count(path)


@pytest.fixture
async def env(aiohttp_server: Any) -> AsyncIterator[Env]:
    clock = FakeClock()
    ding = DingTalkEmulator(APP_KEY, APP_SECRET, ROBOT, clock, org=ding_org())
    ding_server: TestServer = await aiohttp_server(ding.app(), access_log=None)
    wecom = WeComEmulator(corp_id=CORP, apps={AGENT: WECOM_SECRET}, clock=clock, org=wecom_org())
    wecom_server: TestServer = await aiohttp_server(wecom.app(), access_log=None)
    assert ding_server.host == wecom_server.host == "127.0.0.1"
    async with aiohttp.ClientSession() as session:
        yield Env(ding, wecom, ding_server, wecom_server, session, clock)


async def _org(db: Database) -> Org:
    return await SqlDirectory(db).org()


async def _active(db: Database) -> set[str]:
    org = await _org(db)
    return {n for n in org.users if org.active(n)}


async def _sources(db: Database) -> dict[str, str]:
    return (await load_owners(db)).users


# ---------------------------------------------------------------- person keys


def test_person_keys_are_compared_normalised() -> None:
    for raw in ("+86 138 0000 0001", "8613800000001", "0086-138-0000-0001", "138-0000-0001", "13800000001"):
        assert normalise_mobile(raw) == "13800000001", raw
    assert normalise_mobile("+1 (415) 555-0100") == "14155550100"  # not a Chinese number: kept
    assert normalise_mobile("") == ""
    assert normalise_email("  ZhangWei@Example.COM ") == "zhangwei@example.com"
    assert person_key("mobile", phone="+86 13800000001", email="x@y") == "13800000001"
    assert person_key("email", phone="13800000001", email=" X@Y.cn") == "x@y.cn"
    with pytest.raises(ValueError, match="person key"):
        person_key("name", phone="", email="")


# ---------------------------------------------------------------- the mapping


async def test_import_maps_departments_managers_and_users(env: Env, db: Database) -> None:
    report = await sync_org(db, env.client())
    assert (report.departments, report.users, report.inactive) == (3, 5, 1)
    assert report.added == ("manager0002", "staff0003", "staff0004", "staff0005", "staff0006")
    assert (report.merged, report.renamed, report.deactivated, report.shared_departments) == ((), (), (), ())
    # one department/get (the root), one listsub and one user/list per department
    assert env.calls("/topapi/v2/department/get") == 1
    assert env.calls("/topapi/v2/department/listsub") == 3
    assert env.calls("/topapi/v2/user/list") == 3

    org = await _org(db)
    assert org.departments == {
        1: Department(1, "总部", 0, leader="manager0002"),  # dept_manager_userid_list
        RD: Department(RD, "研发中心", 1, leader="staff0003"),  # the user/list leader flag
        QA: Department(QA, "测试组", RD, leader="staff0004"),
    }
    assert org.roles == {}
    assert org.users["manager0002"] == User(
        "manager0002",
        alias="张伟",
        email="ZhangWei@Example.com",
        phone="+86 138 0000 0001",
        dept_ids=(1,),
        dingtalk_staff_id="manager0002",
        avatar="https://static.dingtalk.com/zw.png",
    )
    assert (
        org.users["staff0004"].dept_ids == (QA, RD)
        and org.users["staff0004"].email == "wangqiang@example.com"
    )
    assert not org.active("staff0006")  # DingTalk `active` false: not activated, unreachable
    assert all(u.dingtalk_staff_id == n and u.wecom_userid == "" for n, u in org.users.items())
    assert org.leader_of("staff0005") == "staff0004" and org.leader_of("staff0004") == "staff0003"
    assert org.leader_of("staff0003") == "manager0002"
    assert set((await _sources(db)).values()) == {"dingtalk"}
    assert set((await load_owners(db)).departments.values()) == {"dingtalk"}
    assert "DingTalk directory published as source 'dingtalk'" in format_report(report)


async def test_managers_outside_the_answer_are_no_leaders_and_pages_are_followed(
    env: Env, db: Database
) -> None:
    env.ding.departments[0]["dept_manager_userid_list"] = ["somebody-else", "staff0003"]
    env.ding.users.update(
        {f"p{i:03d}": {"userid": f"p{i:03d}", "name": f"P{i}", "dept_id_list": [QA]} for i in range(150)}
    )
    await sync_org(db, env.client())
    org = await _org(db)
    assert org.departments[1].leader == "staff0003"  # the first manager that is a member
    assert len(org.users) == 155
    assert env.calls("/topapi/v2/user/list") == 4  # QA's 153 members: two pages


@pytest.mark.parametrize("path", ["/topapi/v2/department/listsub", "/topapi/v2/user/list"])
async def test_no_permission_names_what_to_grant(env: Env, db: Database, path: str) -> None:
    await sync_org(db, env.client())
    before = await _org(db)
    env.ding.forbidden_paths.add(path)
    with pytest.raises(DirectoryAccessDenied) as exc:
        await sync_org(db, env.client())
    assert exc.value.code == "60011" and "通讯录" in str(exc.value) and "权限范围" in str(exc.value)
    assert APP_SECRET not in str(exc.value)
    assert await _org(db) == before


async def test_an_empty_answer_and_a_config_department_id_publish_nothing(env: Env, db: Database) -> None:
    await sync_org(db, env.client())
    env.ding.users.clear()
    with pytest.raises(OrgSyncError, match="DingTalk returned no members"):
        await sync_org(db, env.client())
    env.ding.users = {u["userid"]: u for u in ding_org()["users"]}
    await replace_org(db, Org.build([User("admin")], [Department(RD, "Config dept")]), "config")
    with pytest.raises(OrgSyncError, match=rf"department ids {RD} \(config\)"):
        await sync_org(db, env.client())
    assert (await load_owners(db)).departments[RD] == "config"
    assert await _active(db) >= {"manager0002", "staff0003", "staff0004", "staff0005"}


# ---------------------------------------------------------------- one person, one user


async def test_merged_by_mobile_with_wecom_and_a_wecom_ticket_is_approved_from_dingtalk(
    env: Env, db: Database
) -> None:
    first = await wecom_sync.sync_org(db, env.wecom_client())
    assert first.added == ("LiNa", "WangQiang", "WeComOnly", "ZhangWei")

    report = await sync_org(db, env.client())  # TICKETBOT_ORG_PERSON_KEY=mobile, the default
    assert (
        report.merged
        == report.linked
        == (
            ("manager0002", "ZhangWei"),
            ("staff0003", "LiNa"),
            ("staff0004", "WangQiang"),
        )
    )
    assert report.added == ("staff0005", "staff0006") and report.renamed == ()
    assert report.shared_departments == (1,)  # both roots are 1: DingTalk's is left to WeCom
    text = format_report(report)
    assert "linked (now also reached from DingTalk): 3" in text and "staff0003 = LiNa" in text
    assert "1 left to another platform: 1" in text

    org = await _org(db)
    assert len(org.users) == 6  # one user per person
    lina = org.users["LiNa"]
    assert (lina.wecom_userid, lina.dingtalk_staff_id, lina.alias, lina.dept_ids) == (
        "LiNa",
        "staff0003",
        "李娜",
        (2,),
    )
    assert org.users["WeComOnly"].dingtalk_staff_id == ""
    sources = await _sources(db)
    assert sources["LiNa"] == "wecom" and sources["staff0005"] == "dingtalk"  # the owner is kept
    owners = await load_owners(db)
    assert owners.departments == {1: "wecom", 2: "wecom", RD: "dingtalk", QA: "dingtalk"}
    assert org.departments[RD] == Department(RD, "研发中心", 1, leader="LiNa")  # the merged user
    assert org.departments[QA].leader == "WangQiang"
    assert org.leader_of("staff0005") == "WangQiang"

    # a ticket created from WeCom (WangQiang) waits for LiNa, who approves it from DingTalk
    directory = SqlDirectory(db)
    service = TicketService(
        SqlTicketStore(db),
        Catalog([workflow(ops=Participant(ParticipantType.PERSON, "ZhangWei"))]),
        directory,
        FakeClock(),
    )
    sender = find_wecom_user(org.users.values(), "wangqiang")
    created = await service.create(c.Create(sender, 1, SUBMIT, {"days": 2}))
    assert isinstance(created, Done) and created.ticket.participants == ("LiNa",)
    approver = find_user(list((await directory.org()).users.values()), "staff0003")  # as the robot does
    assert approver is not None and approver.username == "LiNa"
    approved = await service.execute(
        created.ticket.id, c.Handle(approver.username, APPROVE, expected_state_id=TL)
    )
    assert isinstance(approved, Done) and approved.ticket.state_id == OPS

    again = await sync_org(db, env.client())  # nothing new: linked users stay linked, quietly
    assert again.linked == () and len(again.merged) == 3 and again.added == () and again.unchanged == 2
    again_wecom = await wecom_sync.sync_org(db, env.wecom_client())  # WeCom keeps DingTalk's links
    assert again_wecom.updated == () and again_wecom.unchanged == 4
    assert (await _org(db)).users["LiNa"].dingtalk_staff_id == "staff0003"


def find_wecom_user(users: Iterable[User], userid: str) -> str:
    return next(u.username for u in users if u.wecom_userid.casefold() == userid.casefold())


async def test_wecom_merges_into_dingtalk_users_the_same_way(env: Env, db: Database) -> None:
    await sync_org(db, env.client())  # DingTalk first this time
    report = await wecom_sync.sync_org(db, env.wecom_client())
    assert report.linked == (
        ("ZhangWei", "manager0002"),
        ("LiNa", "staff0003"),
        ("WangQiang", "staff0004"),
    )
    assert report.added == ("WeComOnly",) and report.shared_departments == (1,)
    org = await _org(db)
    assert (
        org.users["staff0003"].wecom_userid == "LiNa"
        and org.users["staff0003"].dingtalk_staff_id == "staff0003"
    )
    assert (await _sources(db))["staff0003"] == "dingtalk"
    assert org.departments[2].leader == "staff0003"  # WeCom's department led by the merged user


async def test_merged_by_email_when_configured(env: Env, db: Database) -> None:
    for user in env.wecom.users.values():
        user["mobile"] = ""  # no mobiles in WeCom: only the e-mail can match
    await wecom_sync.sync_org(db, env.wecom_client(), person_key="email")
    by_mobile = await sync_org(db, env.client(), dry_run=True)
    assert by_mobile.linked == () and len(by_mobile.added) == 5

    report = await sync_org(db, env.client(), person_key="email")
    # " ZhangWei@Example.com " = zhangwei@example.com; staff0004's org_email = WangQiang@example.com
    assert report.linked == (
        ("manager0002", "ZhangWei"),
        ("staff0003", "LiNa"),
        ("staff0004", "WangQiang"),
    )
    org = await _org(db)
    assert org.users["ZhangWei"].dingtalk_staff_id == "manager0002"


async def test_config_users_are_linked_but_never_changed_otherwise(env: Env, db: Database) -> None:
    config = Org.build(
        [
            User("boss", alias="Config Boss", phone="13800000001", type=UserType.SUPER_ADMIN),
            User("lina", dingtalk_staff_id="staff0003"),  # org.yaml names her DingTalk id
        ]
    )
    await replace_org(db, config, "config")
    report = await sync_org(db, env.client())
    assert report.merged == (("manager0002", "boss"), ("staff0003", "lina"))
    assert report.linked == (("manager0002", "boss"),)
    org = await _org(db)
    assert org.users["boss"] == User(
        "boss",
        alias="Config Boss",
        phone="13800000001",
        type=UserType.SUPER_ADMIN,
        dingtalk_staff_id="manager0002",
    )
    assert org.departments[1].leader == "boss" and org.departments[RD].leader == "lina"
    assert (await _sources(db))["boss"] == "config"

    env.keep("staff0003", "staff0004", "staff0005")  # the boss left DingTalk
    left = await sync_org(db, env.client())
    assert left.unlinked == () and left.deactivated == ()  # org.yaml decides about config users
    assert (await _org(db)).active("boss")


async def test_an_ambiguous_person_key_is_not_merged_and_named(
    env: Env, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    config = Org.build([User("zw1", phone="13800000001"), User("zw2", phone="+86 138 0000 0001")])
    await replace_org(db, config, "config")
    env.ding.users["staff0005"]["mobile"] = env.ding.users["staff0006"]["mobile"] = "13600000000"
    caplog.set_level(logging.WARNING, logger="ticketbot")
    report = await sync_org(db, env.client())
    assert [(a.platform_id, a.key, a.matches) for a in report.ambiguous] == [
        ("manager0002", "mobile", ("zw1", "zw2")),
        ("staff0005", "mobile", ("DingTalk member staff0006",)),
        ("staff0006", "mobile", ("DingTalk member staff0005",)),
    ]
    assert report.merged == () and "manager0002" in report.added  # a user of its own
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 3 and warnings[0].__dict__["matches"] == "zw1, zw2"
    assert warnings[0].__dict__["member"] == "manager0002" and "13800000001" not in caplog.text
    assert "not merged (person key shared): 3: manager0002 (mobile shared by zw1, zw2)" in format_report(
        report
    )
    org = await _org(db)
    assert org.users["zw1"].dingtalk_staff_id == org.users["zw2"].dingtalk_staff_id == ""


async def test_a_taken_username_gets_the_dingtalk_suffix(env: Env, db: Database) -> None:
    await replace_org(db, Org.build([User("STAFF0005", alias="somebody else")]), "config")
    await wecom_sync.sync_org(db, env.wecom_client())
    env.wecom.users["staff0006"] = {"userid": "staff0006", "name": "企微同名", "department": [2], "status": 1}
    await wecom_sync.sync_org(db, env.wecom_client())
    report = await sync_org(db, env.client())
    assert report.renamed == (("staff0005", "staff0005@dingtalk"), ("staff0006", "staff0006@dingtalk"))
    org = await _org(db)
    assert org.users["STAFF0005"].alias == "somebody else"  # never taken over
    assert (
        org.users["staff0006"].wecom_userid == "staff0006" and org.users["staff0006"].dingtalk_staff_id == ""
    )
    assert org.users["staff0005@dingtalk"].dingtalk_staff_id == "staff0005"
    assert "staff0005 -> staff0005@dingtalk" in format_report(report)
    again = await sync_org(db, env.client())  # the same usernames next time
    assert again.renamed == () and again.added == ()


# ---------------------------------------------------------------- leaving a platform


async def test_leaving_dingtalk_unlinks_a_wecom_user_and_deactivates_a_dingtalk_one(
    env: Env, db: Database
) -> None:
    await wecom_sync.sync_org(db, env.wecom_client())
    await sync_org(db, env.client())
    env.keep("manager0002", "staff0003", "staff0006")  # WangQiang and staff0005 left DingTalk
    report = await sync_org(db, env.client())
    assert report.unlinked == ("WangQiang",) and report.deactivated == ("staff0005",)
    assert "unlinked (left DingTalk, kept by their owner): 1: WangQiang" in format_report(report)
    org = await _org(db)
    assert org.active("WangQiang") and org.users["WangQiang"].dingtalk_staff_id == ""  # still on WeCom
    assert "staff0005" in org.users and not org.active("staff0005")  # kept, not deleted

    env.ding.users["staff0003"]["active"] = False  # LiNa inactive in DingTalk: unlinked too
    report = await sync_org(db, env.client())
    assert report.unlinked == ("LiNa",) and report.deactivated == ()
    org = await _org(db)
    assert org.active("LiNa") and org.users["LiNa"].dingtalk_staff_id == ""


async def test_leaving_wecom_hands_a_merged_user_over_to_dingtalk(env: Env, db: Database) -> None:
    await wecom_sync.sync_org(db, env.wecom_client())
    await sync_org(db, env.client())
    del env.wecom.users["LiNa"]  # left WeCom, still on DingTalk
    env.wecom.users["WangQiang"]["status"] = 2  # disabled in WeCom, still on DingTalk
    report = await wecom_sync.sync_org(db, env.wecom_client())
    assert report.handed_over == (("LiNa", "dingtalk"), ("WangQiang", "dingtalk"))
    assert report.deactivated == ()
    org = await _org(db)
    assert org.active("LiNa") and org.active("WangQiang")
    assert (org.users["LiNa"].wecom_userid, org.users["LiNa"].dingtalk_staff_id) == ("", "staff0003")
    assert (await _sources(db))["LiNa"] == "dingtalk"

    refreshed = await sync_org(db, env.client())  # now DingTalk's own user, same username
    assert set(refreshed.updated) == {"LiNa", "WangQiang"} and refreshed.added == ()
    org = await _org(db)
    assert org.users["LiNa"].dept_ids == (RD,) and org.users["LiNa"].dingtalk_staff_id == "staff0003"

    env.wecom.users["LiNa"] = wecom_org()["users"][1]  # back on WeCom: linked again, not duplicated
    back = await wecom_sync.sync_org(db, env.wecom_client())
    assert back.linked == (("LiNa", "LiNa"),) and back.added == ()
    assert (await _org(db)).users["LiNa"].wecom_userid == "LiNa"

    env.keep("manager0002", "staff0004", "staff0005", "staff0006")  # and now she left DingTalk
    gone = await sync_org(db, env.client())
    assert gone.handed_over == (("LiNa", "wecom"),) and gone.deactivated == ()
    assert (await _sources(db))["LiNa"] == "wecom" and (await _org(db)).active("LiNa")


async def test_leaving_both_platforms_deactivates_in_either_order(env: Env, db: Database) -> None:
    await wecom_sync.sync_org(db, env.wecom_client())
    await sync_org(db, env.client())
    del env.wecom.users["LiNa"], env.wecom.users["ZhangWei"]
    env.keep("staff0004", "staff0005", "staff0006")
    # LiNa: WeCom first (handed over), then DingTalk (deactivated); ZhangWei the same in one go
    assert (await wecom_sync.sync_org(db, env.wecom_client())).handed_over == (
        ("LiNa", "dingtalk"),
        ("ZhangWei", "dingtalk"),
    )
    assert (await sync_org(db, env.client())).deactivated == ("LiNa", "ZhangWei")
    assert not (await _active(db)) & {"LiNa", "ZhangWei"}

    env.keep("staff0005", "staff0006")  # WangQiang: DingTalk first (unlinked), then WeCom
    assert (await sync_org(db, env.client())).unlinked == ("WangQiang",)
    del env.wecom.users["WangQiang"]
    assert (await wecom_sync.sync_org(db, env.wecom_client())).deactivated == ("WangQiang",)
    org = await _org(db)
    assert {"LiNa", "ZhangWei", "WangQiang"} <= set(org.users)  # never deleted
    assert not (await _active(db)) & {"LiNa", "ZhangWei", "WangQiang"}


async def test_an_inactive_wecom_user_active_on_dingtalk_is_taken_over(env: Env, db: Database) -> None:
    await wecom_sync.sync_org(db, env.wecom_client())
    del env.wecom.users["WangQiang"]  # left WeCom before DingTalk was imported: deactivated
    assert (await wecom_sync.sync_org(db, env.wecom_client())).deactivated == ("WangQiang",)
    report = await sync_org(db, env.client())
    assert report.taken_over == ("WangQiang",) and "WangQiang" in report.updated
    org = await _org(db)
    wang = org.users["WangQiang"]
    assert org.active("WangQiang") and wang.dingtalk_staff_id == "staff0004" and wang.dept_ids == (QA, RD)
    assert (await _sources(db))["WangQiang"] == "dingtalk"
    assert "staff0004" not in org.users  # the same user, not a second one


async def test_concurrent_scheduled_syncs_on_an_empty_directory_make_one_user_per_person(
    env: Env, db: Database
) -> None:
    @asynccontextmanager
    async def ding() -> AsyncIterator[DingTalkClient]:
        yield env.client()

    @asynccontextmanager
    async def wecom() -> AsyncIterator[WeComClient]:
        yield env.wecom_client()

    directory = SqlDirectory(db)
    jobs = [make_org_sync_job(db, ding, directory=directory), make_wecom_job(db, wecom, directory=directory)]
    await asyncio.gather(*(job() for job in jobs))
    org = await directory.org()
    assert len(org.users) == 6
    merged = [u for u in org.users.values() if u.wecom_userid and u.dingtalk_staff_id]
    assert len(merged) == 3


# ---------------------------------------------------------------- dry runs and the guard


async def test_a_dry_run_reports_and_writes_nothing(env: Env, db: Database) -> None:
    await wecom_sync.sync_org(db, env.wecom_client())
    before = await _org(db)
    dry = await sync_org(db, env.client(), dry_run=True)
    assert dry.dry_run and len(dry.linked) == 3 and dry.added == ("staff0005", "staff0006")
    text = format_report(dry)
    assert (
        "dry run: nothing written" in text and "linked would be (now also reached from DingTalk): 3" in text
    )
    assert await _org(db) == before

    nothing = await sync_org(None, env.client(), dry_run=True)  # no database: an empty directory
    assert len(nothing.added) == 5 and nothing.linked == ()


async def test_a_sync_taking_away_more_than_half_is_refused_unless_forced(env: Env, db: Database) -> None:
    env.ding.users = staff(10)
    assert len((await sync_org(db, env.client())).added) == 10
    everyone = await _active(db)
    env.keep("u01", "u02", "u03", "u04")
    env.ding.users["u04"]["active"] = False
    with pytest.raises(MassDeactivationRefused) as refused:
        await sync_org(db, env.client())
    assert (
        refused.value.deactivating,
        refused.value.active,
        refused.value.missing,
        refused.value.disabled,
    ) == (
        7,
        10,
        6,
        1,
    )
    assert "would deactivate 7 of the 10 active DingTalk users" in str(refused.value)
    assert "--from dingtalk --force" in str(refused.value) and "权限范围" in str(refused.value)
    assert await _active(db) == everyone

    dry = await sync_org(db, env.client(), dry_run=True)
    assert dry.deactivated == tuple(f"u{i:02d}" for i in range(5, 11)) and "7 of the 10" in dry.warning
    forced = await sync_org(db, env.client(), force=True)
    assert forced.deactivated == tuple(f"u{i:02d}" for i in range(5, 11)) and forced.warning == ""
    assert await _active(db) == {"u01", "u02", "u03"}

    env.keep("u01")  # 2 of the 3 left: a tiny directory may lose anyone
    assert SMALL_DIRECTORY >= 3
    assert (await sync_org(db, env.client())).deactivated == ("u02", "u03")


async def test_the_guard_counts_users_of_the_other_platform_that_would_be_unlinked(
    env: Env, db: Database
) -> None:
    env.wecom.users = {
        f"w{i:02d}": {
            "userid": f"w{i:02d}",
            "name": f"员工{i}",
            "department": [1],
            "status": 1,
            "mobile": f"1380000{i:04d}",
        }
        for i in range(1, 9)
    }
    env.ding.users = {
        f"d{i:02d}": {
            "userid": f"d{i:02d}",
            "name": f"员工{i}",
            "dept_id_list": [1],
            "mobile": f"1380000{i:04d}",
        }
        for i in range(1, 9)
    }
    await wecom_sync.sync_org(db, env.wecom_client())
    assert len((await sync_org(db, env.client())).linked) == 8
    env.keep("d01", "d02", "d03")  # DingTalk answered 3 of 8: 5 of the 8 linked users would lose it
    with pytest.raises(MassDeactivationRefused, match="5 of the 8 active DingTalk users"):
        await sync_org(db, env.client())
    assert all(u.dingtalk_staff_id for u in (await _org(db)).users.values())


# ---------------------------------------------------------------- the scheduled job


def _opener(env: Env) -> Any:
    @asynccontextmanager
    async def open_client() -> AsyncIterator[DingTalkClient]:
        yield env.client()

    return open_client


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == level and r.name.startswith("ticketbot")]


async def test_the_job_publishes_logs_and_survives_dingtalk_errors(
    env: Env, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ticketbot")
    directory = SqlDirectory(db)
    assert (await directory.org()).users == {}  # cached from now on
    env.ding.users.update(staff(6))
    job = make_org_sync_job(db, _opener(env), directory=directory, clock=env.clock, person_key="email")
    await job()
    (summary,) = [r for r in _records(caplog, logging.INFO) if r.name == LOGGER]
    assert summary.getMessage() == "DingTalk directory synced" and summary.__dict__["job"] == JOB_NAME
    assert {k: summary.__dict__[k] for k in ("departments", "users", "inactive", "added", "linked")} == {
        "departments": 3,
        "users": 11,
        "inactive": 1,
        "added": 11,
        "linked": 0,
    }
    assert len((await directory.org()).users) == 11  # invalidated by the job

    caplog.clear()
    env.ding.forbidden_paths.add("/topapi/v2/user/list")
    await job()
    (error,) = _records(caplog, logging.ERROR)
    assert (
        error.name == LOGGER and error.getMessage() == "DingTalk directory sync failed: directory unchanged"
    )
    assert error.__dict__["code"] == "60011" and "通讯录" in error.__dict__["error"]
    env.ding.forbidden_paths.clear()

    caplog.clear()
    env.keep("staff0003", "u01")  # 8 of the 10 active users missing
    await job()
    (error,) = _records(caplog, logging.ERROR)
    assert error.getMessage() == "DingTalk directory sync refused: directory unchanged"
    assert (error.__dict__["deactivating"], error.__dict__["active"], error.__dict__["missing"]) == (8, 10, 8)
    assert len(await _active(db)) == 10
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert APP_SECRET not in text and not any(t in text for t in env.ding.issued_tokens())


async def test_schedule_dingtalk_org_sync_runs_over_the_wire(
    env: Env, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(database_url)
    try:
        jobs = Jobs(clock=env.clock)
        assert not schedule_dingtalk_org_sync(jobs, env.settings(database_url), db)  # 0: off
        caplog.set_level(logging.WARNING, logger="ticketbot")
        unconfigured = env.settings(database_url, dingtalk_org_sync_minutes=5, dingtalk_app_secret="")
        assert not schedule_dingtalk_org_sync(jobs, unconfigured, db)
        (warning,) = _records(caplog, logging.WARNING)
        assert warning.__dict__["missing"] == "TICKETBOT_DINGTALK_APP_SECRET"
        assert jobs.names == frozenset()

        directory = SqlDirectory(db)
        settings = env.settings(database_url, dingtalk_org_sync_minutes=120)
        assert schedule_dingtalk_org_sync(jobs, settings, db, directory, first_run_delay=timedelta(minutes=1))
        job = jobs.job(JOB_NAME)
        assert job.trigger.interval == timedelta(minutes=120)
        assert job.next_run_time == env.clock.now() + timedelta(minutes=1)
        await jobs.run(JOB_NAME)  # the production client factory, against the emulator
        assert len((await directory.org()).users) == 5
        assert WECOM_JOB not in jobs.names
    finally:
        await db.dispose()


# ---------------------------------------------------------------- the command line


async def test_the_cli_function_dry_run_then_apply(env: Env, database_url: str, tmp_path: Path) -> None:
    with pytest.raises(OrgSyncError, match="TICKETBOT_DINGTALK_APP_KEY, TICKETBOT_DINGTALK_APP_SECRET"):
        await run_org_sync(
            env.settings(database_url, dingtalk_app_key="", dingtalk_app_secret=""), dry_run=True
        )
    url = f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"
    report, note = await run_org_sync(env.settings(url), dry_run=True, clock=env.clock)
    assert "not migrated" in note and len(report.added) == 5 and not (tmp_path / "none.db").exists()

    applied, note = await run_org_sync(env.settings(database_url), dry_run=False, clock=env.clock)
    assert note == "" and len(applied.added) == 5
    db = Database(database_url)
    try:
        assert len((await _org(db)).users) == 5
    finally:
        await db.dispose()


async def test_cli_org_sync_from_dingtalk_end_to_end(env: Env, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    code, out, _ = await _ticketbot("org", "sync", "--help", env=_cli_env())
    assert code == 0 and "dingtalk" in out and "TICKETBOT_DINGTALK_ORG_SYNC_MINUTES" in out
    assert "TICKETBOT_ORG_PERSON_KEY" in out
    sync = ("org", "sync", "--from", "dingtalk", "--database-url", url)
    code, _, err = await _ticketbot(*sync, env=_cli_env())
    assert code == 1 and "TICKETBOT_DINGTALK_APP_KEY, TICKETBOT_DINGTALK_APP_SECRET" in err

    ding = _cli_env(
        TICKETBOT_DINGTALK_APP_KEY=APP_KEY,
        TICKETBOT_DINGTALK_APP_SECRET=APP_SECRET,
        TICKETBOT_DINGTALK_API_BASE=env.ding_url,
        TICKETBOT_DINGTALK_OAPI_BASE=env.ding_url,
    )
    env.ding.users.update(staff(6))
    code, out, err = await _ticketbot(*sync, "--dry-run", env=ding)
    assert code == 0, err
    assert "DingTalk directory dry run: nothing written" in out and "added would be: 11" in out
    assert not (tmp_path / "cli.db").exists()
    code, out, err = await _ticketbot(*sync, env=ding)
    assert code == 0, err
    assert (
        "published as source 'dingtalk'" in out
        and "added: 11" in out
        and "deactivated (left DingTalk): 0" in out
    )

    env.keep("staff0003", "u01")  # 8 of the 10 active users gone: refused, then forced
    code, out, err = await _ticketbot(*sync, env=ding)
    assert code == 1 and "would deactivate 8 of the 10 active DingTalk users" in err and APP_SECRET not in err
    code, out, err = await _ticketbot(*sync, "--force", env=ding)
    assert code == 0, err
    assert "deactivated (left DingTalk): 8" in out

    env.ding.forbidden_paths.add("/topapi/v2/department/listsub")
    code, _, err = await _ticketbot(*sync, env=ding)
    assert code == 1 and "60011" in err and "权限管理" in err and APP_SECRET not in err
