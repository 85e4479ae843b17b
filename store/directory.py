"""The organisation directory in SQL: core.ports.Directory, and replacing it from a source.

`replace_org` is how a source (the config file, a WeCom or DingTalk contact sync) publishes its
directory: users, departments and roles are upserted; users of that source missing from the new
directory are DEACTIVATED (never deleted: tickets keep naming them), while departments and roles
of that source that disappeared are removed. Entries owned by another source are left alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.org import Department, Org, Role, User, UserType
from store.db import Database, upsert
from store.errors import StoreError
from store.tables import org_department, org_role, org_user

if TYPE_CHECKING:
    from core.ports import Directory

SOURCES = ("config", "wecom", "dingtalk")
_CHUNK = 500  # keeps IN (...) lists well below the drivers' bind-parameter limits


@dataclass(frozen=True, slots=True)
class OrgSync:
    """What `replace_org` did."""

    users: int
    departments: int
    roles: int
    deactivated: tuple[str, ...]
    removed_departments: tuple[int, ...]
    removed_roles: tuple[int, ...]


async def load_org(db: Database) -> Org:
    """The whole directory (inactive users included: Org.active() tells them apart)."""
    async with db.read() as conn:
        users = [
            User(
                username=r.username,
                alias=r.alias,
                email=r.email,
                phone=r.phone,
                dept_ids=tuple(int(d) for d in r.dept_ids or ()),
                type=UserType(r.type),
                is_active=bool(r.is_active),
                wecom_userid=r.wecom_userid,
                dingtalk_staff_id=r.dingtalk_staff_id,
                avatar=r.avatar,
            )
            for r in await conn.execute(select(org_user).order_by(org_user.c.username))
        ]
        departments = [
            Department(
                id=r.id,
                name=r.name,
                parent_id=r.parent_id,
                leader=r.leader,
                approvers=tuple(r.approvers or ()),
            )
            for r in await conn.execute(select(org_department).order_by(org_department.c.id))
        ]
        roles = [
            Role(id=r.id, name=r.name, members=tuple(r.members or ()))
            for r in await conn.execute(select(org_role).order_by(org_role.c.id))
        ]
    return Org.build(users, departments, roles)


@dataclass(frozen=True, slots=True)
class Owners:
    """Which source owns each user and department row."""

    users: dict[str, str]
    departments: dict[int, str]


async def load_owners(db: Database) -> Owners:
    """username -> source and department id -> source, for every row (a sync checks collisions)."""
    async with db.read() as conn:
        users = {
            r.username: r.source for r in await conn.execute(select(org_user.c.username, org_user.c.source))
        }
        departments = {
            int(r.id): r.source
            for r in await conn.execute(select(org_department.c.id, org_department.c.source))
        }
    return Owners(users, departments)


class SqlDirectory:
    """core.ports.Directory over the org_* tables, cached in memory until `invalidate()`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._org: Org | None = None
        self._generation = 0
        self._lock = asyncio.Lock()

    async def org(self) -> Org:
        cached = self._org
        if cached is not None:
            return cached
        async with self._lock:  # one load at a time; waiters get its result
            if self._org is not None:
                return self._org
            generation = self._generation
            loaded = await load_org(self._db)
            if generation == self._generation:  # not invalidated while loading
                self._org = loaded
            return loaded

    def invalidate(self) -> None:
        """Forget the cached directory; the next `org()` reads the tables again."""
        self._generation += 1
        self._org = None


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


async def _upsert(conn: AsyncConnection, table: Table, key: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = upsert("postgresql" if conn.dialect.name == "postgresql" else "sqlite", table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name != key},
    )
    await conn.execute(stmt, rows)


async def _keys_of_source(conn: AsyncConnection, table: Table, key: str, source: str) -> set[Any]:
    result = await conn.execute(select(table.c[key]).where(table.c.source == source))
    return set(result.scalars())


async def replace_org(db: Database, org: Org, source: str, *, now: datetime | None = None) -> OrgSync:
    """Make the directory of `source` equal to `org` (see the module docstring)."""
    if not source:
        raise StoreError("a directory source name is required")
    stamp = now if now is not None else datetime.now(UTC)
    users = [
        {
            "username": u.username,
            "alias": u.alias,
            "email": u.email,
            "phone": u.phone,
            "dept_ids": list(u.dept_ids),
            "type": int(u.type),
            "is_active": u.is_active,
            "wecom_userid": u.wecom_userid,
            "dingtalk_staff_id": u.dingtalk_staff_id,
            "avatar": u.avatar,
            "source": source,
            "updated_at": stamp,
        }
        for u in org.users.values()
    ]
    departments = [
        {
            "id": d.id,
            "name": d.name,
            "parent_id": d.parent_id,
            "leader": d.leader,
            "approvers": list(d.approvers),
            "source": source,
            "updated_at": stamp,
        }
        for d in org.departments.values()
    ]
    roles = [
        {"id": r.id, "name": r.name, "members": list(r.members), "source": source, "updated_at": stamp}
        for r in org.roles.values()
    ]
    async with db.write() as conn:
        gone_users = sorted(await _keys_of_source(conn, org_user, "username", source) - set(org.users))
        gone_depts = sorted(await _keys_of_source(conn, org_department, "id", source) - set(org.departments))
        gone_roles = sorted(await _keys_of_source(conn, org_role, "id", source) - set(org.roles))
        await _upsert(conn, org_user, "username", users)
        await _upsert(conn, org_department, "id", departments)
        await _upsert(conn, org_role, "id", roles)
        deactivated: list[str] = []
        for chunk in _chunks(gone_users):
            result = await conn.execute(
                update(org_user)
                .where(org_user.c.username.in_(chunk), org_user.c.is_active.is_(True))
                .values(is_active=False, updated_at=stamp)
                .returning(org_user.c.username)
            )
            deactivated.extend(result.scalars())
        for chunk in _chunks(gone_depts):
            await conn.execute(delete(org_department).where(org_department.c.id.in_(chunk)))
        for chunk in _chunks(gone_roles):
            await conn.execute(delete(org_role).where(org_role.c.id.in_(chunk)))
    return OrgSync(
        users=len(users),
        departments=len(departments),
        roles=len(roles),
        deactivated=tuple(sorted(deactivated)),
        removed_departments=tuple(gone_depts),
        removed_roles=tuple(gone_roles),
    )


if TYPE_CHECKING:

    def _conforms(directory: SqlDirectory) -> Directory:
        return directory
