"""The organisation directory from WeCom's contacts: `fetch_org`, and `sync_org` that publishes it.

Mapping (WeCom -> core.org, through bot.org_sync's `Member` / `PlatformDepartment`):

- department/list: id -> Department.id, name, parentid -> parent_id (0 when the parent is outside
  the app's visible range, so visible sub-trees become roots), department_leader -> leader (the
  first one that is a synced member). approvers stay empty (WeCom has no such notion).
- user/list?department_id=<root>&fetch_child=1 for each visible root department (so an app that
  sees only part of the corp still works); members are de-duplicated by userid.
  username = the WeCom userid, unchanged (case kept), so a sender's FromUserName is its username;
  `<userid>@wecom` when another user already has that username (case-insensitively). A member that
  is the same person as a user of another source (that user has this wecom_userid, compared
  case-insensitively, or the same person key: TICKETBOT_ORG_PERSON_KEY) is not published as a user
  of its own: its wecom_userid is linked onto that user (see bot/org_sync.py for the merge and
  leave rules, shared with DingTalk).
  alias = name, email, mobile -> phone, department -> dept_ids (main_department first),
  wecom_userid = userid, avatar, is_active = status == 1 (1 active; 2 disabled, 4 not activated,
  5 exited are inactive; a missing status counts as active). WeCom no longer returns mobile, email
  and avatar to apps created after 2022-06-20 unless they are allowed to: those come out "" (and
  then cannot merge by person key).
- Roles: WeCom has none; the WeCom source publishes no roles.

`sync_org` applies it with `store.directory.replace_org(db, org, "wecom", links=...)`: WeCom users
missing from WeCom are deactivated, never deleted (or handed over to DingTalk when they are still
there). Users and departments of the config source (config/org.yaml, the offline demo directory)
are untouched but for linked wecom_userids; a WeCom department id that the config source already
owns is refused rather than taken over (`serve` re-publishes config/org.yaml at every start and
would take it back).

Two safety valves against a truncated answer from WeCom (each refuses and changes nothing): no
member at all, and a sync that would deactivate more than half of the active WeCom users (whether
they are missing from the answer or disabled in WeCom), unless there are only a few
(`SMALL_DIRECTORY` or fewer active WeCom users). `force=True` (`ticketbot org sync --force`) lifts
the second one; a dry run reports it as a warning instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.clock import SystemClock
from bot.org_sync import (
    SMALL_DIRECTORY,
    Fetched,
    MassDeactivationRefused,
    Member,
    OrgSyncError,
    Platform,
    PlatformDepartment,
    SyncReport,
    format_report,
    open_database,
    plan,
    sync,
)
from bot.wecom.client import WeComClient, WeComError
from config.settings import PREFIX, Settings
from core.org import Org
from core.ports import Clock
from store.db import Database
from store.directory import Owners

__all__ = [  # the neutral names are re-exported: callers and tests use them from here
    "SMALL_DIRECTORY",
    "DirectoryAccessDenied",
    "MassDeactivationRefused",
    "OrgSyncError",
    "SyncReport",
    "WeComDirectory",
    "fetch_directory",
    "fetch_members",
    "fetch_org",
    "format_report",
    "missing_settings",
    "run_org_sync",
    "sync_org",
]

SOURCE = "wecom"
ACTIVE = 1  # WeCom member status: 1 active, 2 disabled, 4 not activated, 5 exited
RENAMED_SUFFIX = "@wecom"
DENIED = frozenset({48002, 60011})
GRANT_HINT = (
    "the app may not read the contacts: in the WeCom admin console (管理后台 -> 应用管理 -> this app) "
    "set 可见范围 (visible range) to the departments to sync (the top department for everyone) and make "
    "sure the app may call the contacts APIs (通讯录 read: department/list, user/list); or use the "
    "通讯录同步 (contacts sync) Secret as TICKETBOT_WECOM_SECRET"
)
PLATFORM = Platform(
    source=SOURCE,
    label="WeCom",
    fold=str.casefold,
    visibility_hint="the app's 可见范围 / visible range in the WeCom admin console",
)


class DirectoryAccessDenied(WeComError):
    """48002 / 60011 while reading departments or members: the app lacks the permission."""


@dataclass(frozen=True, slots=True)
class WeComDirectory:
    org: Org
    renamed: tuple[tuple[str, str], ...] = ()  # (userid, username) for usernames another user had
    merged: tuple[tuple[str, str], ...] = ()  # (userid, username of another source's user that is it)


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


async def fetch_members(client: WeComClient) -> Fetched:
    """The departments and members the app can see, as the neutral sync takes them."""
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
    departments = []
    for dept_id, raw in sorted(visible.items()):
        parent = _int(raw.get("parentid"))
        departments.append(
            PlatformDepartment(
                id=dept_id,
                name=_text(raw.get("name")),
                parent_id=parent if parent in visible else 0,
                leaders=tuple(_text(x) for x in raw.get("department_leader") or () if _text(x)),
            )
        )
    return Fetched(
        members=tuple(
            Member(
                platform_id=userid,
                alias=_text(raw.get("name")),
                email=_text(raw.get("email")),
                phone=_text(raw.get("mobile")),
                dept_ids=_dept_ids(raw),
                active=_int(raw.get("status"), ACTIVE) == ACTIVE,
                avatar=_text(raw.get("avatar")),
            )
            for userid, raw in members.items()
        ),
        departments=tuple(departments),
    )


async def fetch_directory(
    client: WeComClient, *, others: Org | None = None, person_key: str = "mobile"
) -> WeComDirectory:
    """The WeCom directory as an Org; `others`: the users of other sources (for collisions)."""
    fetched = await fetch_members(client)
    before = others or Org()
    found = plan(
        fetched, before, Owners(dict.fromkeys(before.users, "config"), {}), PLATFORM, key_kind=person_key
    )
    return WeComDirectory(found.org, found.renamed, found.merged)


async def fetch_org(client: WeComClient) -> Org:
    """Departments and members the app can see, mapped to core.org (see the module docstring)."""
    return (await fetch_directory(client)).org


async def sync_org(
    db: Database | None,
    client: WeComClient,
    *,
    dry_run: bool = False,
    force: bool = False,
    person_key: str = "mobile",
) -> SyncReport:
    """Fetch the WeCom directory and, unless `dry_run`, publish it as source "wecom".

    Raises DirectoryAccessDenied / WeComError when WeCom refuses, OrgSyncError when WeCom returned no
    member at all (that would deactivate everyone) or a department id belongs to the config source,
    MassDeactivationRefused (an OrgSyncError) when it would deactivate more than half of the active
    WeCom users and `force` is not set (a dry run reports that in `warning` instead). Nothing is
    written when it raises. The database must be migrated; `db` None (dry runs only) compares with
    an empty directory. `person_key`: TICKETBOT_ORG_PERSON_KEY (bot/org_sync.py)."""
    return await sync(
        db, PLATFORM, lambda: fetch_members(client), person_key=person_key, dry_run=dry_run, force=force
    )


def missing_settings(settings: Settings) -> list[str]:
    """The TICKETBOT_WECOM_* variables a sync needs and `settings` lacks."""
    need = {"wecom_corp_id": settings.wecom_corp_id, "wecom_secret": settings.wecom_secret}
    return [PREFIX + name.upper() for name, value in need.items() if not value]


async def run_org_sync(
    settings: Settings, *, dry_run: bool, force: bool = False, clock: Clock | None = None
) -> tuple[SyncReport, str]:
    """What `ticketbot org sync --from wecom` does: (the report, a note for the user).

    Publishing migrates the database first; a dry run writes nothing (and compares with an empty
    directory when the database is not migrated yet). `force`: see `sync_org`."""
    missing = missing_settings(settings)
    if missing:
        raise OrgSyncError(f"WeCom is not configured for a sync: set {', '.join(missing)}")
    db, note = await open_database(settings, dry_run=dry_run)
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
            report = await sync_org(
                db, client, dry_run=dry_run, force=force, person_key=settings.org_person_key
            )
    finally:
        if db is not None:
            await db.dispose()
    return report, note
