"""The WeCom directory sync against the emulator on 127.0.0.1: the mapping, publishing it to both
databases (leavers and disabled members deactivated, never deleted; tickets keep flowing), collisions
with the config source, the permission errors, and `ticketbot org sync` end to end."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.wecom.client import WeComClient
from bot.wecom.org_sync import (
    SMALL_DIRECTORY,
    DirectoryAccessDenied,
    MassDeactivationRefused,
    OrgSyncError,
    fetch_directory,
    fetch_org,
    format_report,
    run_org_sync,
    sync_org,
)
from config.settings import Settings
from core import commands as c
from core.catalog import Catalog
from core.org import Department, Org, User, UserType
from core.service import Done, TicketService
from core.workflow import Participant, ParticipantType
from emulator.wecom import WeComEmulator
from store.db import Database
from store.directory import SqlDirectory, load_owners, replace_org
from store.queries import flow_logs, get_ticket
from store.tickets import SqlTicketStore
from tests.core.builders import APPROVE, DONE, END, OPS, SUBMIT, TL, workflow
from tests.fakes import FakeClock

CORP = "ww-corp-sync"
AGENT = 1000002
SECRET = "sync-secret-DO-NOT-LOG"


def wecom_org() -> dict[str, list[dict[str, Any]]]:
    return {
        "departments": [
            {"id": 1, "name": "总部", "parentid": 0, "department_leader": ["ceo"]},
            {"id": 2, "name": "技术部", "parentid": 1, "department_leader": ["bob", "carol"]},
            {"id": 3, "name": "运维部", "parentid": 1, "department_leader": []},
        ],
        "users": [
            {
                "userid": "ceo",
                "name": "老板",
                "department": [1],
                "status": 1,
                "email": "ceo@example.com",
                "mobile": "13800000001",
                "avatar": "https://wework.qpic.cn/ceo/0",
            },
            {"userid": "alice", "name": "爱丽丝", "department": [2], "status": 1},
            {"userid": "bob", "name": "鲍勃", "department": [3, 2], "main_department": 2, "status": 1},
            {"userid": "carol", "name": "卡罗尔", "department": [2], "status": 1},
            {"userid": "dave", "name": "戴夫", "department": [3], "status": 2},
            {"userid": "erin", "name": "艾琳", "department": [3], "status": 4},
            {"userid": "frank", "name": "弗兰克", "department": [3], "status": 5},
        ],
    }


def staff_org(n: int) -> dict[str, list[dict[str, Any]]]:
    """One department with `n` active members u01, u02, ..."""
    return {
        "departments": [{"id": 1, "name": "总部", "parentid": 0, "department_leader": []}],
        "users": [
            {"userid": f"u{i:02d}", "name": f"员工{i}", "department": [1], "status": 1}
            for i in range(1, n + 1)
        ],
    }


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

    def settings(self, database_url: str, **kw: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "config_dir": Path(__file__).resolve().parents[2] / "config",
            "wecom_corp_id": CORP,
            "wecom_secret": SECRET,
            "wecom_agent_id": AGENT,
            "wecom_api_base": self.url,
        }
        return Settings(**{**values, **kw})


@pytest.fixture
async def env(aiohttp_server: Any) -> AsyncIterator[Env]:
    clock = FakeClock()
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, org=wecom_org())
    server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
    assert server.host == "127.0.0.1"
    async with aiohttp.ClientSession() as session:
        yield Env(emulator, server, session, clock)


async def test_fetch_org_maps_departments_leaders_users_and_status(env: Env) -> None:
    org = await fetch_org(env.client())
    assert org.departments == {
        1: Department(1, "总部", 0, leader="ceo"),
        2: Department(2, "技术部", 1, leader="bob"),  # the first department_leader
        3: Department(3, "运维部", 1, leader=""),
    }
    assert org.roles == {}  # WeCom has no roles
    assert org.users["ceo"] == User(
        "ceo",
        alias="老板",
        email="ceo@example.com",
        phone="13800000001",
        dept_ids=(1,),
        wecom_userid="ceo",
        avatar="https://wework.qpic.cn/ceo/0",
    )
    assert org.users["bob"].dept_ids == (2, 3)  # main_department first: creator_tl uses it
    assert {n for n, u in org.users.items() if u.is_active} == {"ceo", "alice", "bob", "carol"}
    assert not any(org.active(n) for n in ("dave", "erin", "frank"))  # status 2, 4, 5
    assert all(u.type == UserType.NORMAL and u.wecom_userid == n for n, u in org.users.items())
    assert org.leader_of("alice") == "bob" and org.leader_of("bob") == "ceo"


async def test_only_the_visible_subtree_is_fetched_and_its_top_becomes_a_root(env: Env) -> None:
    env.emulator.departments = [d for d in env.emulator.departments if d["id"] != 1]
    env.emulator.users = {k: v for k, v in env.emulator.users.items() if k != "ceo"}
    org = await fetch_org(env.client())
    assert {d.id: d.parent_id for d in org.departments.values()} == {2: 0, 3: 0}
    assert set(org.users) == {"alice", "bob", "carol", "dave", "erin", "frank"}
    assert env.emulator.records.calls.count("/cgi-bin/user/list") == 2  # one per visible root


async def test_sync_publishes_then_deactivates_leavers_and_disabled_and_tickets_keep_flowing(
    env: Env, db: Database
) -> None:
    await replace_org(db, Org.build([User("admin", type=UserType.SUPER_ADMIN)]), "config")
    first = await sync_org(db, env.client())
    assert (first.departments, first.users, first.inactive) == (3, 7, 3)
    assert first.added == ("alice", "bob", "carol", "ceo", "dave", "erin", "frank")
    assert (first.updated, first.deactivated) == ((), ())

    wf = workflow(ops=Participant(ParticipantType.PERSON, "ceo"))
    directory = SqlDirectory(db)
    service = TicketService(SqlTicketStore(db), Catalog([wf]), directory, FakeClock())
    created = await service.create(c.Create("alice", 1, SUBMIT, {"days": 2}))
    assert isinstance(created, Done) and created.ticket.participants == ("bob",)
    ticket_id = created.ticket.id
    approved = await service.execute(ticket_id, c.Handle("bob", APPROVE, expected_state_id=TL))
    assert isinstance(approved, Done) and approved.ticket.state_id == OPS

    del env.emulator.users["alice"]  # left the company
    env.emulator.users["bob"]["status"] = 2  # disabled
    second = await sync_org(db, env.client())
    assert second.deactivated == ("alice",) and second.updated == ("bob",)
    assert second.added == () and second.unchanged == 5

    directory.invalidate()
    org = await directory.org()
    assert "alice" in org.users and not org.active("alice")  # kept, not deleted
    assert org.users["alice"].alias == "爱丽丝" and org.users["alice"].wecom_userid == "alice"
    assert "bob" in org.users and not org.active("bob")
    assert org.is_super_admin("admin")  # the config source is untouched
    owners = await load_owners(db)
    assert owners.users["admin"] == "config" and owners.users["alice"] == "wecom"

    finished = await service.execute(
        ticket_id, c.Handle("ceo", DONE, {"reason": "ok"}, expected_state_id=OPS)
    )
    assert isinstance(finished, Done) and finished.ticket.state_id == END
    ticket = await get_ticket(db, ticket_id)
    assert ticket is not None and ticket.creator == "alice"
    assert [log.transition_id for log in await flow_logs(db, ticket_id, desc=False)] == [
        SUBMIT,
        APPROVE,
        DONE,
    ]

    env.emulator.users["bob"]["status"] = 1  # re-enabled in WeCom: active again
    third = await sync_org(db, env.client())
    directory.invalidate()
    assert third.updated == ("bob",) and (await directory.org()).active("bob")


async def test_usernames_of_other_sources_are_never_taken_over(env: Env, db: Database) -> None:
    config = Org.build(
        [User("carol", alias="Config Carol"), User("boss", wecom_userid="CEO", type=UserType.SUPER_ADMIN)],
        [Department(9, "Config dept")],
    )
    await replace_org(db, config, "config")
    report = await sync_org(db, env.client())
    assert report.renamed == (("carol", "carol@wecom"),)
    assert report.merged == (("ceo", "boss"),)
    org = await SqlDirectory(db).org()
    assert org.users["carol"].alias == "Config Carol" and org.users["carol@wecom"].wecom_userid == "carol"
    assert "ceo" not in org.users and org.is_super_admin("boss")
    assert org.departments[1].leader == "boss" and org.departments[2].leader == "bob"
    assert "carol@wecom" in format_report(report) and "ceo = boss" in format_report(report)

    await replace_org(db, Org.build([], [Department(2, "Config IT")]), "config")
    with pytest.raises(OrgSyncError, match=r"department ids 2 \(config\)"):
        await sync_org(db, env.client())
    assert (await load_owners(db)).departments[2] == "config"


async def test_an_empty_answer_publishes_nothing(env: Env, db: Database) -> None:
    await sync_org(db, env.client())
    env.emulator.users.clear()
    with pytest.raises(OrgSyncError, match="no members"):
        await sync_org(db, env.client())
    directory = SqlDirectory(db)
    assert (await directory.org()).active("alice")


@pytest.mark.parametrize("path", ["/cgi-bin/department/list", "/cgi-bin/user/list"])
async def test_no_permission_names_what_to_grant(env: Env, path: str) -> None:
    env.emulator.forbidden_paths.add(path)
    with pytest.raises(DirectoryAccessDenied) as exc:
        await fetch_org(env.client())
    assert exc.value.errcode == 48002
    assert "可见范围" in str(exc.value) and "admin console" in str(exc.value)
    assert SECRET not in str(exc.value)


async def test_60011_is_a_permission_error_too(env: Env) -> None:
    env.emulator.fail_next(
        1, 60011, path="/cgi-bin/user/list", errmsg="no privilege to access/modify contact"
    )
    with pytest.raises(DirectoryAccessDenied) as exc:
        await fetch_directory(env.client())
    assert exc.value.errcode == 60011 and "user/list of department 1" in str(exc.value)


async def test_the_cli_function_dry_run_then_apply(env: Env, database_url: str) -> None:
    dry, note = await run_org_sync(env.settings(database_url), dry_run=True, clock=env.clock)
    assert note == "" and dry.dry_run and len(dry.added) == 7
    assert "dry run: nothing written" in format_report(dry)
    db = Database(database_url)
    try:
        assert (await SqlDirectory(db).org()).users == {}
        applied, _ = await run_org_sync(env.settings(database_url), dry_run=False, clock=env.clock)
        assert len(applied.added) == 7 and len((await SqlDirectory(db).org()).users) == 7
        del env.emulator.users["frank"]
        again, _ = await run_org_sync(env.settings(database_url), dry_run=True, clock=env.clock)
        assert again.deactivated == () and again.unchanged == 6  # frank was inactive already
        del env.emulator.users["carol"]
        again, _ = await run_org_sync(env.settings(database_url), dry_run=True, clock=env.clock)
        assert again.deactivated == ("carol",)
        assert (await SqlDirectory(db).org()).active("carol")  # a dry run writes nothing
    finally:
        await db.dispose()


async def test_the_cli_function_needs_the_wecom_settings(env: Env, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"
    with pytest.raises(OrgSyncError, match="TICKETBOT_WECOM_CORP_ID, TICKETBOT_WECOM_SECRET"):
        await run_org_sync(env.settings(url, wecom_corp_id="", wecom_secret=""), dry_run=True)
    report, note = await run_org_sync(env.settings(url), dry_run=True, clock=env.clock)
    assert "not migrated" in note and len(report.added) == 7
    assert not (tmp_path / "none.db").exists()


def _cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETBOT_")}
    return {**env, **extra}


async def _ticketbot(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_cli_org_sync_end_to_end(env: Env, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    code, out, _ = await _ticketbot("org", "sync", "--help", env=_cli_env())
    assert code == 0 and "--dry-run" in out and "--from" in out and "--force" in out
    assert "more than half" in out and "TICKETBOT_WECOM_ORG_SYNC_MINUTES" in out
    code, out, _ = await _ticketbot("org", "--help", env=_cli_env())
    assert code == 0 and "sync" in out
    code, _, err = await _ticketbot("org", "sync", "--from", "wecom", "--database-url", url, env=_cli_env())
    assert code == 1 and "TICKETBOT_WECOM_CORP_ID, TICKETBOT_WECOM_SECRET" in err

    wecom = _cli_env(
        TICKETBOT_WECOM_CORP_ID=CORP,
        TICKETBOT_WECOM_SECRET=SECRET,
        TICKETBOT_WECOM_TOKEN="tok",
        TICKETBOT_WECOM_AES_KEY="a" * 43,
        TICKETBOT_WECOM_API_BASE=env.url,
    )
    code, out, err = await _ticketbot(
        "org", "sync", "--from", "wecom", "--dry-run", "--database-url", url, env=wecom
    )
    assert code == 0, err
    assert (
        "dry run: nothing written" in out
        and "added would be: 7" in out
        and not (tmp_path / "cli.db").exists()
    )
    code, out, err = await _ticketbot("org", "sync", "--from", "wecom", "--database-url", url, env=wecom)
    assert code == 0, err
    assert "published as source 'wecom'" in out and "added: 7" in out and "deactivated (left WeCom): 0" in out
    env.emulator.forbidden_paths.add("/cgi-bin/department/list")
    code, _, err = await _ticketbot("org", "sync", "--from", "wecom", "--database-url", url, env=wecom)
    assert code == 1 and "48002" in err and "可见范围" in err and SECRET not in err


def _keep(env: Env, *userids: str) -> None:
    env.emulator.users = {k: v for k, v in env.emulator.users.items() if k in userids}


async def _active(db: Database) -> set[str]:
    org = await SqlDirectory(db).org()
    return {n for n in org.users if org.active(n)}


async def test_a_sync_deactivating_more_than_half_of_the_active_users_is_refused(
    env: Env, db: Database
) -> None:
    env.emulator.users = {u["userid"]: u for u in staff_org(10)["users"]}
    assert len((await sync_org(db, env.client())).added) == 10
    everyone = await _active(db)

    _keep(env, "u01", "u02", "u03", "u04")  # a half-empty answer: 6 of 10 missing
    with pytest.raises(MassDeactivationRefused) as refused:
        await sync_org(db, env.client())
    assert (
        refused.value.deactivating,
        refused.value.active,
        refused.value.missing,
        refused.value.disabled,
    ) == (
        6,
        10,
        6,
        0,
    )
    assert "would deactivate 6 of the 10 active WeCom users" in str(refused.value)
    assert "nothing published" in str(refused.value) and "--force" in str(refused.value)
    assert await _active(db) == everyone  # nothing changed

    dry = await sync_org(db, env.client(), dry_run=True)  # a dry run reports it instead
    assert dry.deactivated == tuple(f"u{i:02d}" for i in range(5, 11))
    assert "6 of the 10" in dry.warning and "a real sync would be refused" in format_report(dry)

    env.emulator.users = {u["userid"]: u for u in staff_org(10)["users"]}
    for userid in ("u05", "u06"):
        env.emulator.users[userid]["status"] = 2  # disabled in WeCom counts too
    _keep(env, *[f"u{i:02d}" for i in range(1, 7)])
    with pytest.raises(MassDeactivationRefused) as refused:
        await sync_org(db, env.client())
    assert (refused.value.deactivating, refused.value.missing, refused.value.disabled) == (6, 4, 2)
    assert await _active(db) == everyone

    env.emulator.users = {u["userid"]: u for u in staff_org(10)["users"]}
    _keep(env, "u01", "u02", "u03", "u04", "u05")  # exactly half is allowed
    assert (await sync_org(db, env.client())).deactivated == ("u06", "u07", "u08", "u09", "u10")

    _keep(env, "u01", "u02")  # 3 of the 5 still active: refused, unless forced
    with pytest.raises(MassDeactivationRefused, match="3 of the 5"):
        await sync_org(db, env.client())
    forced = await sync_org(db, env.client(), force=True)
    assert forced.deactivated == ("u03", "u04", "u05") and forced.warning == ""
    assert await _active(db) == {"u01", "u02"}


async def test_a_small_directory_may_lose_anyone(env: Env, db: Database) -> None:
    staff = {u["userid"]: u for u in staff_org(SMALL_DIRECTORY + 1)["users"]}
    env.emulator.users = dict(staff)
    await sync_org(db, env.client())
    for kept in (("u01",), ("u01", "u02")):  # 4 or 3 of 5: refused
        env.emulator.users = {k: v for k, v in staff.items() if k in kept}
        with pytest.raises(MassDeactivationRefused):
            await sync_org(db, env.client())
    env.emulator.users = {k: v for k, v in staff.items() if k in ("u01", "u02", "u03")}
    assert (await sync_org(db, env.client())).deactivated == ("u04", "u05")  # 2 of 5: fine
    _keep(env, "u01")  # then 2 of the 3 left: a tiny directory, allowed
    assert (await sync_org(db, env.client())).deactivated == ("u02", "u03")
    assert await _active(db) == {"u01"}


async def test_cli_org_sync_refuses_a_mass_deactivation_without_force(env: Env, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env.emulator.users = {u["userid"]: u for u in staff_org(8)["users"]}
    first, _ = await run_org_sync(env.settings(url), dry_run=False, clock=env.clock)
    assert len(first.added) == 8
    _keep(env, "u01", "u02", "u03")
    wecom = _cli_env(
        TICKETBOT_WECOM_CORP_ID=CORP,
        TICKETBOT_WECOM_SECRET=SECRET,
        TICKETBOT_WECOM_TOKEN="tok",
        TICKETBOT_WECOM_AES_KEY="a" * 43,
        TICKETBOT_WECOM_API_BASE=env.url,
    )
    sync = ("org", "sync", "--from", "wecom", "--database-url", url)
    code, out, err = await _ticketbot(*sync, env=wecom)
    assert code == 1, out
    assert "would deactivate 5 of the 8 active WeCom users" in err and "--force" in err and SECRET not in err
    code, out, err = await _ticketbot(*sync, "--dry-run", env=wecom)
    assert code == 0, err
    assert (
        "deactivated would be (left WeCom): 5" in out
        and "warning: the sync would deactivate 5 of the 8" in out
    )
    code, out, err = await _ticketbot(*sync, "--force", env=wecom)
    assert code == 0, err
    assert "deactivated (left WeCom): 5" in out and "warning" not in out
    db = Database(url)
    try:
        assert await _active(db) == {"u01", "u02", "u03"}
    finally:
        await db.dispose()
