"""SqlDirectory and replace_org on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.org import Department, Org, Role, User, UserType
from store.db import Database
from store.directory import Links, SqlDirectory, load_owners, replace_org
from store.errors import StoreError
from store.tables import org_user
from tests.store.builders import rows

NOW = datetime(2024, 5, 15, 8, 0, tzinfo=UTC)


def config_org() -> Org:
    return Org.build(
        users=[
            User("alice", alias="Alice", email="alice@example.com", dept_ids=(1,), type=UserType.SUPER_ADMIN),
            User("bob", alias="鲍勃", phone="13800000000", dept_ids=(2, 1), wecom_userid="BobW"),
            User("carol", dept_ids=(2,), dingtalk_staff_id="c-01", avatar="https://img.example/c.png"),
            User("old", is_active=False),
        ],
        departments=[
            Department(1, "HQ", leader="alice"),
            Department(2, "IT", parent_id=1, leader="bob", approvers=("carol",)),
        ],
        roles=[Role(1, "ops", members=("bob", "carol")), Role(2, "audit", members=("alice",))],
    )


async def test_replace_then_read_back(db: Database) -> None:
    org = config_org()
    result = await replace_org(db, org, "config", now=NOW)
    assert (result.users, result.departments, result.roles, result.deactivated) == (4, 2, 2, ())
    got = await SqlDirectory(db).org()
    assert got == org
    assert got.leader_of("carol") == "bob"
    assert got.role_members(1) == ("bob", "carol")
    assert got.is_super_admin("alice")
    assert all(r["source"] == "config" and r["updated_at"] == NOW for r in await rows(db, org_user))


async def test_missing_users_are_deactivated_not_deleted(db: Database) -> None:
    await replace_org(db, config_org(), "config", now=NOW)
    wecom = Org.build([User("wendy", wecom_userid="wendy")])
    await replace_org(db, wecom, "wecom", now=NOW)

    smaller = Org.build(
        users=[User("alice", dept_ids=(1,), type=UserType.SUPER_ADMIN), User("carol", dept_ids=(1,))],
        departments=[Department(1, "HQ", leader="alice")],
        roles=[Role(2, "audit", members=("alice",))],
    )
    result = await replace_org(db, smaller, "config", now=NOW)
    assert result.deactivated == ("bob",)  # "old" was inactive already
    assert result.removed_departments == (2,)
    assert result.removed_roles == (1,)

    org = await SqlDirectory(db).org()
    assert set(org.users) == {"alice", "bob", "carol", "old", "wendy"}
    assert not org.active("bob")
    assert not org.active("old")
    assert org.active("wendy")  # another source's users are left alone
    assert org.active("carol")
    assert org.users["carol"].dept_ids == (1,)
    assert org.users["bob"].wecom_userid == "BobW"  # kept as it was, only deactivated
    assert set(org.departments) == {1}
    assert set(org.roles) == {2}
    assert org.department_members(1) == ("alice", "carol")

    await replace_org(db, config_org(), "config", now=NOW)  # bob comes back
    assert (await SqlDirectory(db).org()).active("bob")


async def test_org_is_cached_until_invalidated(db: Database) -> None:
    directory = SqlDirectory(db)
    assert await directory.org() == Org.build([])
    await replace_org(db, config_org(), "config", now=NOW)
    first = await directory.org()
    assert first.users == {}
    assert await directory.org() is first
    directory.invalidate()
    assert await directory.org() == config_org()


async def test_a_platform_never_overwrites_the_other_platforms_id_and_links_rows_it_does_not_own(
    db: Database,
) -> None:
    await replace_org(db, Org.build([User("cfg", phone="1")]), "config", now=NOW)
    await replace_org(db, Org.build([User("w1", wecom_userid="w1"), User("w2", wecom_userid="w2")]), "wecom")
    await replace_org(
        db,
        Org.build([User("d1", dingtalk_staff_id="d1")]),
        "dingtalk",
        links=Links(attach={"w1": "dw1", "w2": "dw2", "cfg": "dcfg", "d1": "ignored"}),
    )
    org = await SqlDirectory(db).org()
    assert [org.users[n].dingtalk_staff_id for n in ("w1", "w2", "cfg", "d1")] == ["dw1", "dw2", "dcfg", "d1"]

    # WeCom republishes its users without DingTalk ids: the links stay (DingTalk's column)
    result = await replace_org(
        db,
        Org.build([User("w1", alias="W1", wecom_userid="w1")]),
        "wecom",
        links=Links(hand_over={"w2": "dingtalk"}),
    )
    assert result.handed_over == ("w2",) and result.deactivated == ()
    org = await SqlDirectory(db).org()
    assert org.users["w1"].alias == "W1" and org.users["w1"].dingtalk_staff_id == "dw1"
    w2 = org.users["w2"]
    assert (w2.is_active, w2.wecom_userid, w2.dingtalk_staff_id) == (True, "", "dw2")
    owners = await load_owners(db)
    assert owners.users == {"cfg": "config", "w1": "wecom", "w2": "dingtalk", "d1": "dingtalk"}

    # DingTalk unlinks w1 (left DingTalk); the config source, republished at every start, keeps
    # the ids a sync linked onto its users (its file names none), but an id it names wins
    result = await replace_org(
        db,
        Org.build([User("d1", dingtalk_staff_id="d1"), User("w2", dingtalk_staff_id="dw2")]),
        "dingtalk",
        links=Links(detach=("w1",)),
    )
    assert result.detached == 1 and result.deactivated == ()
    await replace_org(db, Org.build([User("cfg", phone="1")]), "config", now=NOW)
    org = await SqlDirectory(db).org()
    assert org.users["w1"].dingtalk_staff_id == "" and org.active("w1")
    assert org.users["cfg"].dingtalk_staff_id == "dcfg"
    await replace_org(
        db, Org.build([User("cfg", phone="1", dingtalk_staff_id="from-yaml")]), "config", now=NOW
    )
    assert (await SqlDirectory(db).org()).users["cfg"].dingtalk_staff_id == "from-yaml"

    with pytest.raises(StoreError, match="platform source"):
        await replace_org(db, Org.build([]), "config", links=Links(attach={"cfg": "x"}))
    with pytest.raises(StoreError, match="cannot hand"):
        await replace_org(db, Org.build([]), "wecom", links=Links(hand_over={"w1": "wecom"}))
