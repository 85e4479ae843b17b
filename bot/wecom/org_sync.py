"""The organisation directory from WeCom's contacts: `fetch_org`, and `sync_org` that publishes it.

Mapping (WeCom -> core.org):

- department/list: id -> Department.id, name, parentid -> parent_id (0 when the parent is outside
  the app's visible range, so visible sub-trees become roots), department_leader[0] -> leader.
  approvers stay empty (WeCom has no such notion).
- user/list?department_id=<root>&fetch_child=1 for each visible root department (so an app that
  sees only part of the corp still works); members are de-duplicated by userid.
  username = the WeCom userid, unchanged (case kept), so a sender's FromUserName is its username.
  Exceptions, to never take over another source's row (`org_user.username` is shared by all sources):
    * another source's user already has this wecom_userid (compared case-insensitively): that user IS
      the member; the member is left out and leaders naming it point at that username;
    * another source's user already has this username (case-insensitively) for somebody else: the
      member becomes `<userid>@wecom`.
  alias = name, email, mobile -> phone, department -> dept_ids (main_department first),
  wecom_userid = userid, avatar, is_active = status == 1 (1 active; 2 disabled, 4 not activated,
  5 exited are inactive; a missing status counts as active). WeCom no longer returns mobile, email
  and avatar to apps created after 2022-06-20 unless they are allowed to: those come out "".
- Roles: WeCom has none; the WeCom source publishes no roles.

`sync_org` applies it with `store.directory.replace_org(db, org, "wecom")`: WeCom users missing
from WeCom are deactivated, never deleted. Users and departments of other sources (config/org.yaml
is source "config", the offline demo directory) are untouched; a WeCom department id that another
source already owns is refused rather than taken over (`serve` re-publishes config/org.yaml at
every start and would take it back).

Two safety valves against a truncated answer from WeCom (each refuses and changes nothing): no
member at all, and a sync that would deactivate more than half of the active WeCom users (whether
they are missing from the answer or disabled in WeCom), unless there are only a few
(`SMALL_DIRECTORY` or fewer active WeCom users). `force=True` (`ticketbot org sync --force`) lifts
the second one; a dry run reports it as a warning instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.clock import SystemClock
from bot.wecom.client import WeComClient, WeComError
from config.settings import PREFIX, Settings, redact_url
from core.org import Department, Org, User
from core.ports import Clock
from store.db import Database
from store.directory import Owners, load_org, load_owners, replace_org
from store.migrate import current_revision_async, head_revision, upgrade_async

SOURCE = "wecom"
ACTIVE = 1  # WeCom member status: 1 active, 2 disabled, 4 not activated, 5 exited
RENAMED_SUFFIX = "@wecom"
DENIED = frozenset({48002, 60011})
SMALL_DIRECTORY = 4  # up to this many active WeCom users, a sync may deactivate any number of them
GRANT_HINT = (
    "the app may not read the contacts: in the WeCom admin console (管理后台 -> 应用管理 -> this app) "
    "set 可见范围 (visible range) to the departments to sync (the top department for everyone) and make "
    "sure the app may call the contacts APIs (通讯录 read: department/list, user/list); or use the "
    "通讯录同步 (contacts sync) Secret as TICKETBOT_WECOM_SECRET"
)


class DirectoryAccessDenied(WeComError):
    """48002 / 60011 while reading departments or members: the app lacks the permission."""


class OrgSyncError(Exception):
    """The WeCom directory cannot be published (collision with another source, or nothing fetched)."""


class MassDeactivationRefused(OrgSyncError):
    """The sync would deactivate more than half of the active WeCom users: nothing was published."""

    def __init__(self, deactivating: int, active: int, missing: int, disabled: int) -> None:
        self.deactivating = deactivating
        self.active = active
        self.missing = missing
        self.disabled = disabled
        self.summary = (
            f"the sync would deactivate {deactivating} of the {active} active WeCom users "
            f"({missing} missing from WeCom's answer, {disabled} disabled in WeCom), more than half"
        )
        super().__init__(
            f"{self.summary}: nothing published. WeCom's answer may be incomplete (check the app's "
            "可见范围 / visible range in the WeCom admin console); if it is right, run "
            "`ticketbot org sync --from wecom --force` once"
        )


@dataclass(frozen=True, slots=True)
class WeComDirectory:
    org: Org
    renamed: tuple[tuple[str, str], ...] = ()  # (userid, username) for usernames another source had
    merged: tuple[tuple[str, str], ...] = ()  # (userid, username of another source's user with it)


@dataclass(frozen=True, slots=True)
class SyncReport:
    dry_run: bool
    departments: int
    users: int
    inactive: int  # users in WeCom whose status is not 1
    added: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: int
    deactivated: tuple[str, ...]  # WeCom users of a previous sync that left WeCom
    removed_departments: tuple[int, ...]
    renamed: tuple[tuple[str, str], ...] = ()
    merged: tuple[tuple[str, str], ...] = field(default=())
    warning: str = ""  # dry runs: why a real sync would be refused


def _denied(exc: WeComError, what: str) -> DirectoryAccessDenied:
    return DirectoryAccessDenied(exc.errcode, f"{what}: {exc.errmsg}", GRANT_HINT)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _dept_ids(raw: Mapping[str, Any]) -> tuple[int, ...]:
    ids = [_int(d) for d in raw.get("department") or () if _int(d) > 0]
    main = _int(raw.get("main_department"))
    if main in ids:
        ids.remove(main)
        ids.insert(0, main)
    return tuple(dict.fromkeys(ids))


def _usernames(
    userids: Iterable[str], others: Org
) -> tuple[dict[str, str], list[tuple[str, str]], list[tuple[str, str]]]:
    """userid -> username, and the renamed / merged pairs (see the module docstring)."""
    by_wecom = {u.wecom_userid.casefold(): u.username for u in others.users.values() if u.wecom_userid}
    taken = {name.casefold() for name in others.users}
    names: dict[str, str] = {}
    renamed: list[tuple[str, str]] = []
    merged: list[tuple[str, str]] = []
    for userid in userids:
        owner = by_wecom.get(userid.casefold())
        if owner is not None:
            names[userid] = owner
            merged.append((userid, owner))
        elif userid.casefold() in taken:
            names[userid] = userid + RENAMED_SUFFIX
            renamed.append((userid, names[userid]))
        else:
            names[userid] = userid
    return names, renamed, merged


async def fetch_directory(client: WeComClient, *, others: Org | None = None) -> WeComDirectory:
    """The WeCom directory as an Org; `others`: the users of the other sources (for collisions)."""
    try:
        raw_depts = await client.list_departments()
    except WeComError as exc:
        if exc.errcode in DENIED:
            raise _denied(exc, "department/list") from None
        raise
    visible = {_int(d.get("id")): d for d in raw_depts if _int(d.get("id")) > 0}
    roots = sorted(i for i, d in visible.items() if _int(d.get("parentid")) not in visible)
    members: dict[str, dict[str, Any]] = {}
    for root in roots:
        try:
            listed = await client.list_users(root, fetch_child=True)
        except WeComError as exc:
            if exc.errcode in DENIED:
                raise _denied(exc, f"user/list of department {root}") from None
            raise
        for raw in listed:
            userid = _text(raw.get("userid"))
            if userid and userid not in members:
                members[userid] = raw
    names, renamed, merged = _usernames(members, others or Org())
    own = {userid for userid, _ in merged}
    users = [
        User(
            username=names[userid],
            alias=_text(raw.get("name")),
            email=_text(raw.get("email")),
            phone=_text(raw.get("mobile")),
            dept_ids=_dept_ids(raw),
            is_active=_int(raw.get("status"), ACTIVE) == ACTIVE,
            wecom_userid=userid,
            avatar=_text(raw.get("avatar")),
        )
        for userid, raw in members.items()
        if userid not in own
    ]
    departments = []
    for dept_id, raw in sorted(visible.items()):
        leaders = [_text(x) for x in raw.get("department_leader") or () if _text(x)]
        parent = _int(raw.get("parentid"))
        departments.append(
            Department(
                id=dept_id,
                name=_text(raw.get("name")) or str(dept_id),
                parent_id=parent if parent in visible else 0,
                leader=names.get(leaders[0], leaders[0]) if leaders else "",
            )
        )
    return WeComDirectory(Org.build(users, departments), tuple(renamed), tuple(merged))


async def fetch_org(client: WeComClient) -> Org:
    """Departments and members the app can see, mapped to core.org (see the module docstring)."""
    return (await fetch_directory(client)).org


def _deactivating(before: Org, owners: Owners, org: Org) -> MassDeactivationRefused | None:
    """The refusal when publishing `org` would deactivate more than half of the active WeCom users."""
    active = [n for n, s in owners.users.items() if s == SOURCE and before.active(n)]
    missing = sum(1 for n in active if n not in org.users)
    disabled = sum(1 for n in active if n in org.users and not org.users[n].is_active)
    if len(active) <= SMALL_DIRECTORY or 2 * (missing + disabled) <= len(active):
        return None
    return MassDeactivationRefused(missing + disabled, len(active), missing, disabled)


async def sync_org(
    db: Database | None, client: WeComClient, *, dry_run: bool = False, force: bool = False
) -> SyncReport:
    """Fetch the WeCom directory and, unless `dry_run`, publish it as source "wecom".

    Raises DirectoryAccessDenied / WeComError when WeCom refuses, OrgSyncError when WeCom returned no
    member at all (that would deactivate everyone) or a department id belongs to another source,
    MassDeactivationRefused (an OrgSyncError) when it would deactivate more than half of the active
    WeCom users and `force` is not set (a dry run reports that in `warning` instead). Nothing is
    written when it raises. The database must be migrated; `db` None (dry runs only) compares with
    an empty directory."""
    if db is None and not dry_run:
        raise OrgSyncError("a database is needed to publish the directory")
    before = await load_org(db) if db is not None else Org()
    owners = await load_owners(db) if db is not None else Owners({}, {})
    others = Org.build(u for name, u in before.users.items() if owners.users.get(name) != SOURCE)
    directory = await fetch_directory(client, others=others)
    org = directory.org
    if not org.users:
        raise OrgSyncError(
            "WeCom returned no members: nothing published (it would deactivate every WeCom user); "
            "check the app's 可见范围 (visible range) in the WeCom admin console"
        )
    clashes = sorted(i for i in org.departments if owners.departments.get(i, SOURCE) != SOURCE)
    if clashes:
        owned = ", ".join(f"{i} ({owners.departments[i]})" for i in clashes)
        raise OrgSyncError(
            f"WeCom department ids {owned} already belong to another source: nothing published. "
            "Department ids are shared by all sources; point TICKETBOT_CONFIG_DIR at a config whose "
            "org.yaml does not use these ids (config/org.yaml stays the offline demo directory)"
        )
    refusal = None if force else _deactivating(before, owners, org)
    if refusal is not None and not dry_run:
        raise refusal
    added = tuple(sorted(n for n in org.users if n not in before.users))
    updated = tuple(sorted(n for n, u in org.users.items() if n in before.users and before.users[n] != u))
    unchanged = len(org.users) - len(added) - len(updated)
    if dry_run:
        gone = {n for n, s in owners.users.items() if s == SOURCE and n not in org.users}
        deactivated = tuple(sorted(n for n in gone if before.active(n)))
        removed = tuple(
            sorted(i for i, s in owners.departments.items() if s == SOURCE and i not in org.departments)
        )
    else:
        assert db is not None
        result = await replace_org(db, org, SOURCE)
        deactivated, removed = result.deactivated, result.removed_departments
    return SyncReport(
        dry_run=dry_run,
        departments=len(org.departments),
        users=len(org.users),
        inactive=sum(1 for u in org.users.values() if not u.is_active),
        added=added,
        updated=updated,
        unchanged=unchanged,
        deactivated=deactivated,
        removed_departments=removed,
        renamed=directory.renamed,
        merged=directory.merged,
        warning=f"{refusal.summary}: a real sync would be refused (--force publishes it anyway)"
        if refusal is not None
        else "",
    )


def missing_settings(settings: Settings) -> list[str]:
    """The TICKETBOT_WECOM_* variables a sync needs and `settings` lacks."""
    need = {"wecom_corp_id": settings.wecom_corp_id, "wecom_secret": settings.wecom_secret}
    return [PREFIX + name.upper() for name, value in need.items() if not value]


def _sqlite_file_missing(url: str) -> bool:
    parsed = make_url(url)
    path = parsed.database
    return (
        parsed.get_backend_name() == "sqlite"
        and bool(path)
        and path != ":memory:"
        and not Path(str(path)).exists()
    )


async def _migrated(url: str) -> bool:
    """Whether the database exists and is at the head revision (looked at without creating it)."""
    if _sqlite_file_missing(url):
        return False
    try:
        return await current_revision_async(url) == head_revision()
    except (SQLAlchemyError, OSError):
        return False


async def run_org_sync(
    settings: Settings, *, dry_run: bool, force: bool = False, clock: Clock | None = None
) -> tuple[SyncReport, str]:
    """What `ticketbot org sync --from wecom` does: (the report, a note for the user).

    Publishing migrates the database first; a dry run writes nothing (and compares with an empty
    directory when the database is not migrated yet). `force`: see `sync_org`."""
    missing = missing_settings(settings)
    if missing:
        raise OrgSyncError(f"WeCom is not configured for a sync: set {', '.join(missing)}")
    note = ""
    db: Database | None = None
    if not dry_run:
        await upgrade_async(settings.database_url)
        db = Database(settings.database_url)
    elif await _migrated(settings.database_url):
        db = Database(settings.database_url)
    else:
        note = (
            f"database {redact_url(settings.database_url)} is not migrated: compared with an empty directory"
        )
    try:
        async with aiohttp.ClientSession() as session:
            client = WeComClient(
                session,
                api_base=settings.wecom_api_base,
                corp_id=settings.wecom_corp_id,
                corp_secret=settings.wecom_secret,
                agent_id=settings.wecom_agent_id or 0,
                clock=clock or SystemClock(),
            )
            report = await sync_org(db, client, dry_run=dry_run, force=force)
    finally:
        if db is not None:
            await db.dispose()
    return report, note


def _names(items: Iterable[str], limit: int = 10) -> str:
    shown = list(items)
    if not shown:
        return ""
    more = f", ... (+{len(shown) - limit})" if len(shown) > limit else ""
    return ": " + ", ".join(shown[:limit]) + more


def format_report(report: SyncReport) -> str:
    """The summary `ticketbot org sync` prints."""
    verb = "would be" if report.dry_run else ""
    head = "dry run: nothing written" if report.dry_run else "published as source 'wecom'"
    lines = [
        f"WeCom directory {head}",
        f"  departments: {report.departments} (removed {len(report.removed_departments)}"
        f"{_names(str(i) for i in report.removed_departments)})",
        f"  users: {report.users} ({report.inactive} inactive in WeCom)",
        f"  added{' ' + verb if verb else ''}: {len(report.added)}{_names(report.added)}",
        f"  updated{' ' + verb if verb else ''}: {len(report.updated)}{_names(report.updated)}",
        f"  unchanged: {report.unchanged}",
        f"  deactivated{' ' + verb if verb else ''} (left WeCom): {len(report.deactivated)}"
        f"{_names(report.deactivated)}",
    ]
    if report.renamed:
        lines.append(
            f"  renamed (username taken by another source): {_names(f'{a} -> {b}' for a, b in report.renamed)[2:]}"
        )
    if report.merged:
        lines.append(
            "  left to another source (its user has this wecom_userid): "
            + _names(f"{a} = {b}" for a, b in report.merged)[2:]
        )
    if report.warning:
        lines.append(f"  warning: {report.warning}")
    return "\n".join(lines)
