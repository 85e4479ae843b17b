"""The organisation directory in SQL: core.ports.Directory, and replacing it from a source.

`replace_org` is how a source (the config file, a WeCom or DingTalk contact sync) publishes its
directory: users, departments and roles are upserted; users of that source missing from the new
directory are DEACTIVATED (never deleted: tickets keep naming them), while departments and roles
of that source that disappeared are removed. Entries owned by another source are left alone.

One person may be known on both chat platforms; they are ONE row (one username) carrying both
platform ids, owned by one source (`org_user.source`). The platform id columns are therefore
shared (`PLATFORM_ID_COLUMNS`):

- a platform source ("wecom", "dingtalk") never overwrites ANOTHER platform's id column on a row
  that already exists (that id was linked by the other platform's sync); it writes its own column
  and everything else. The config source writes every column (org.yaml is authoritative for its
  rows, so republishing it drops ids a platform sync linked onto config users until that sync runs
  again);
- `links` (platform sources only) is what a platform's sync changes beyond its own rows, in the
  same transaction: `attach` sets its id column on rows of other sources (the same person),
  `detach` clears it on rows of other sources (the person left that platform), `hand_over` gives
  rows of this source that left the platform to the other platform's source instead of
  deactivating them (they stay active; this platform's id column is cleared).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.org import Department, Org, Role, User, UserType
from store.db import Database, upsert
from store.errors import StoreError
from store.tables import org_department, org_role, org_user

if TYPE_CHECKING:
    from core.ports import Directory

SOURCES = ("config", "wecom", "dingtalk")
PLATFORM_ID_COLUMNS: Mapping[str, str] = {"wecom": "wecom_userid", "dingtalk": "dingtalk_staff_id"}
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
    handed_over: tuple[str, ...] = ()
    attached: int = 0  # rows of other sources whose platform id was set
    detached: int = 0  # rows of other sources whose platform id was cleared


@dataclass(frozen=True, slots=True)
class Links:
    """What a platform's sync changes beyond its own rows (see the module docstring)."""

    attach: Mapping[str, str] = field(default_factory=dict)  # username (other source) -> platform id
    detach: tuple[str, ...] = ()  # usernames (other sources) whose platform id is cleared
    hand_over: Mapping[str, str] = field(default_factory=dict)  # username (this source) -> new source


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


async def _upsert(
    conn: AsyncConnection,
    table: Table,
    key: str,
    rows: list[dict[str, Any]],
    *,
    keep: set[str] | None = None,
    fill: set[str] | None = None,
) -> None:
    """Insert `rows`, or update the existing row with the same `key` (its `keep` columns untouched;
    its `fill` columns only where the new value is not empty)."""
    if not rows:
        return
    stmt = upsert("postgresql" if conn.dialect.name == "postgresql" else "sqlite", table)
    untouched = {key, *(keep or ())}
    filled = fill or set()
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={
            c.name: (
                func.coalesce(func.nullif(stmt.excluded[c.name], ""), table.c[c.name])
                if c.name in filled
                else stmt.excluded[c.name]
            )
            for c in table.columns
            if c.name not in untouched
        },
    )
    await conn.execute(stmt, rows)


async def _keys_of_source(conn: AsyncConnection, table: Table, key: str, source: str) -> set[Any]:
    result = await conn.execute(select(table.c[key]).where(table.c.source == source))
    return set(result.scalars())


def _check_links(source: str, links: Links) -> str:
    """The id column `source` links, after checking `links` can be applied."""
    column = PLATFORM_ID_COLUMNS.get(source)
    if column is None:
        raise StoreError(
            f"only a platform source ({', '.join(PLATFORM_ID_COLUMNS)}) links users, not {source!r}"
        )
    for target in links.hand_over.values():
        if target not in SOURCES or target == source:
            raise StoreError(f"cannot hand users of {source!r} over to {target!r}")
    return column


async def replace_org(
    db: Database, org: Org, source: str, *, now: datetime | None = None, links: Links | None = None
) -> OrgSync:
    """Make the directory of `source` equal to `org` (see the module docstring)."""
    if not source:
        raise StoreError("a directory source name is required")
    links = links or Links()
    linking = bool(links.attach or links.detach or links.hand_over)
    column = _check_links(source, links) if linking else PLATFORM_ID_COLUMNS.get(source, "")
    kept = (
        {c for s, c in PLATFORM_ID_COLUMNS.items() if s != source} if source in PLATFORM_ID_COLUMNS else set()
    )
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
        own_users = await _keys_of_source(conn, org_user, "username", source)
        handing = sorted(n for n in links.hand_over if n in own_users and n not in org.users)
        gone_users = sorted(own_users - set(org.users) - set(handing))
        gone_depts = sorted(await _keys_of_source(conn, org_department, "id", source) - set(org.departments))
        gone_roles = sorted(await _keys_of_source(conn, org_role, "id", source) - set(org.roles))
        # a non-platform source (config) keeps the platform ids a sync linked onto its users,
        # unless its own file names one
        fill = set(PLATFORM_ID_COLUMNS.values()) if source not in PLATFORM_ID_COLUMNS else set()
        await _upsert(conn, org_user, "username", users, keep=kept, fill=fill)
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
        for username in handing:
            await conn.execute(
                update(org_user)
                .where(org_user.c.username == username, org_user.c.source == source)
                .values(
                    {"source": links.hand_over[username], column: "", "is_active": True, "updated_at": stamp}
                )
            )
        attached = await _set_links(conn, source, column, links.attach, stamp)
        detached = await _set_links(conn, source, column, dict.fromkeys(links.detach, ""), stamp)
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
        handed_over=tuple(handing),
        attached=attached,
        detached=detached,
    )


async def _set_links(
    conn: AsyncConnection, source: str, column: str, values: Mapping[str, str], stamp: datetime
) -> int:
    """Set `column` on rows of other sources: username -> value ("" clears). The rows changed."""
    if not values:
        return 0
    stmt = (
        update(org_user)
        .where(org_user.c.username == bindparam("b_username"), org_user.c.source != source)
        .values({column: bindparam("b_value"), "updated_at": stamp})
    )
    changed = 0
    for username, value in sorted(values.items()):  # one by one: rowcount of executemany varies
        result = await conn.execute(stmt, {"b_username": username, "b_value": value})
        changed += max(result.rowcount, 0)
    return changed


if TYPE_CHECKING:

    def _conforms(directory: SqlDirectory) -> Directory:
        return directory
