"""The organisation directory from DingTalk's contacts: `fetch_members`, and `sync_org` that
publishes it as source "dingtalk" (merged with WeCom's by person key: bot/org_sync.py).

Reading (old API, through DingTalkClient; every call counts against the monthly API quota):

- department/get of the root department (1): its name and `dept_manager_userid_list`;
- department/listsub from the root down, one call per department (DingTalkClient.list_departments);
- user/list of every department (its direct members, 100 a page); members are de-duplicated by
  userid.

A sync therefore costs about 2 x (departments + 1) + 1 calls (plus one per further page of 100
members and the token): mind it when choosing TICKETBOT_DINGTALK_ORG_SYNC_MINUTES on a free plan.

Mapping (DingTalk -> core.org, through bot.org_sync's `Member` / `PlatformDepartment`):

- departments: dept_id -> Department.id (DingTalk's ids, unchanged; a DingTalk department id that
  the other platform already owns, e.g. both roots are 1, is left to it), name, parent_id (0 for
  the root), leader = the first manager that is a synced member: `dept_manager_userid_list` where
  the department record carries it (department/get: the root), then the members user/list flags as
  `leader` of that department (or whose `leader_in_dept` says so), in DingTalk's order. listsub
  returns no managers and department/get per department would double the calls, so sub-departments
  take their managers from the member flags. approvers stay empty.
- users: username = the DingTalk userid, unchanged (`<userid>@dingtalk` when another user already
  has that username, compared case-insensitively); dingtalk_staff_id = userid (compared exactly,
  as the robot and card callbacks name the sender); alias = name; phone = mobile (prefixed
  `+<state_code>-` when DingTalk gives a state code other than 86); email = email, else org_email;
  dept_ids = dept_id_list (then any other department that listed the member); avatar; is_active =
  `active` (a member who has not activated DingTalk cannot be reached; a missing flag counts as
  active). Members who left the organisation are simply absent from DingTalk's answer. DingTalk
  returns mobile and email only to apps granted those fields: without them nobody merges by that
  person key.
- Roles: none (DingTalk's admin / boss flags are not mapped).

A member that is the same person as a user of another source (that user has this
dingtalk_staff_id, or the same person key, TICKETBOT_ORG_PERSON_KEY) is not published as a user of
its own: its dingtalk_staff_id is linked onto that user. Leaving DingTalk deactivates only users
who are on no other platform. The rules, the safety valves and `--force`: bot/org_sync.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.clock import SystemClock
from bot.dingtalk.client import DingTalkClient, NoPermission
from bot.org_sync import (
    Fetched,
    Member,
    OrgSyncError,
    Platform,
    PlatformDepartment,
    SyncReport,
    open_database,
    sync,
)
from config.settings import PREFIX, Settings
from core.ports import Clock
from store.db import Database

SOURCE = "dingtalk"
ROOT = 1  # DingTalk's root department (the whole organisation)
HOME_STATE_CODE = "86"
GRANT_HINT = (
    "the app may not read the contacts: in the DingTalk developer console (开发者后台 -> this app -> "
    "权限管理) grant 通讯录部门信息读权限 and 成员信息读权限 (and the mobile / e-mail fields to merge by "
    "TICKETBOT_ORG_PERSON_KEY), and set the contacts scope (权限范围) to the whole organisation"
)
PLATFORM = Platform(
    source=SOURCE,
    label="DingTalk",
    visibility_hint="the app's contacts permissions and scope (权限管理 / 权限范围) in the DingTalk developer console",
)


class DirectoryAccessDenied(NoPermission):
    """60011 / Forbidden.* while reading departments or members: the app lacks the permission."""


def _denied(exc: NoPermission, what: str) -> DirectoryAccessDenied:
    return DirectoryAccessDenied(
        exc.code, f"{what}: {exc.message}", GRANT_HINT, status=exc.status, request_id=exc.request_id
    )


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _text(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _flag(value: Any, default: bool = False) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return default


def _phone(raw: Mapping[str, Any]) -> str:
    mobile = _text(raw.get("mobile"))
    state = _text(raw.get("state_code")).lstrip("+")
    if mobile and state and state != HOME_STATE_CODE and not mobile.startswith("+"):
        return f"+{state}-{mobile}"
    return mobile


def _managers(record: Mapping[str, Any]) -> list[str]:
    raw = record.get("dept_manager_userid_list")
    if isinstance(raw, str):  # some answers give "a,b"
        raw = raw.split(",")
    return [_text(x) for x in raw or () if _text(x)] if isinstance(raw, list | tuple) else []


def _parent(dept_id: int, record: Mapping[str, Any], records: Mapping[int, object]) -> int:
    parent = _int(record.get("parent_id"))
    return parent if dept_id != ROOT and parent in records else 0


async def fetch_members(client: DingTalkClient) -> Fetched:
    """The departments and members the app can read, as the neutral sync takes them."""
    try:
        root = await client.get_department(ROOT)
        subs = await client.list_departments(ROOT)
    except NoPermission as exc:
        raise _denied(exc, "department/get, department/listsub") from None
    records: dict[int, Mapping[str, Any]] = {ROOT: root}
    for dept in subs:
        dept_id = _int(dept.get("dept_id"))
        if dept_id > 0 and dept_id not in records:
            records[dept_id] = dept
    members: dict[str, dict[str, Any]] = {}
    listed_in: dict[str, list[int]] = {}
    leaders: dict[int, list[str]] = {dept_id: _managers(record) for dept_id, record in records.items()}
    for dept_id in records:
        try:
            listed = await client.list_users(dept_id)
        except NoPermission as exc:
            raise _denied(exc, f"user/list of department {dept_id}") from None
        for raw in listed:
            userid = _text(raw.get("userid"))
            if not userid:
                continue
            members.setdefault(userid, raw)
            listed_in.setdefault(userid, []).append(dept_id)
            if _flag(raw.get("leader")):
                leaders[dept_id].append(userid)
            for entry in raw.get("leader_in_dept") or ():
                led = _int(entry.get("dept_id")) if isinstance(entry, Mapping) else 0
                if led in leaders and _flag(entry.get("leader")):
                    leaders[led].append(userid)
    departments = tuple(
        PlatformDepartment(
            id=dept_id,
            name=_text(record.get("name")),
            parent_id=_parent(dept_id, record, records),
            leaders=tuple(dict.fromkeys(leaders[dept_id])),
        )
        for dept_id, record in records.items()
    )
    return Fetched(
        members=tuple(
            Member(
                platform_id=userid,
                alias=_text(raw.get("name")),
                email=_text(raw.get("email")) or _text(raw.get("org_email")),
                phone=_phone(raw),
                dept_ids=tuple(
                    dict.fromkeys(
                        [d for d in (_int(x) for x in raw.get("dept_id_list") or ()) if d > 0]
                        + listed_in[userid]
                    )
                ),
                active=_flag(raw.get("active"), default=True),
                avatar=_text(raw.get("avatar")),
            )
            for userid, raw in members.items()
        ),
        departments=departments,
    )


async def sync_org(
    db: Database | None,
    client: DingTalkClient,
    *,
    dry_run: bool = False,
    force: bool = False,
    person_key: str = "mobile",
) -> SyncReport:
    """Fetch the DingTalk directory and, unless `dry_run`, publish it as source "dingtalk".

    Raises DirectoryAccessDenied / DingTalkError when DingTalk refuses, OrgSyncError when DingTalk
    returned no member at all or a department id belongs to the config source,
    MassDeactivationRefused (an OrgSyncError) when more than half of the active DingTalk users would
    go and `force` is not set (a dry run reports that in `warning` instead). Nothing is written when
    it raises; `db` None (dry runs only) compares with an empty directory. `person_key`:
    TICKETBOT_ORG_PERSON_KEY (bot/org_sync.py)."""
    return await sync(
        db, PLATFORM, lambda: fetch_members(client), person_key=person_key, dry_run=dry_run, force=force
    )


def missing_settings(settings: Settings) -> list[str]:
    """The TICKETBOT_DINGTALK_* variables a sync needs and `settings` lacks."""
    need = {
        "dingtalk_app_key": settings.dingtalk_app_key,
        "dingtalk_app_secret": settings.dingtalk_app_secret,
    }
    return [PREFIX + name.upper() for name, value in need.items() if not value]


def client_for(session: aiohttp.ClientSession, settings: Settings, clock: Clock) -> DingTalkClient:
    """The DingTalk client a sync uses (contacts only: the robot code may be unset)."""
    return DingTalkClient(
        session,
        api_base=settings.dingtalk_api_base,
        oapi_base=settings.dingtalk_oapi_base,
        app_key=settings.dingtalk_app_key,
        app_secret=settings.dingtalk_app_secret,
        robot_code=settings.dingtalk_robot_code,
        clock=clock,
    )


async def run_org_sync(
    settings: Settings, *, dry_run: bool, force: bool = False, clock: Clock | None = None
) -> tuple[SyncReport, str]:
    """What `ticketbot org sync --from dingtalk` does: (the report, a note for the user).

    Publishing migrates the database first; a dry run writes nothing (and compares with an empty
    directory when the database is not migrated yet). `force`: see `sync_org`."""
    missing = missing_settings(settings)
    if missing:
        raise OrgSyncError(f"DingTalk is not configured for a sync: set {', '.join(missing)}")
    db, note = await open_database(settings, dry_run=dry_run)
    try:
        async with aiohttp.ClientSession() as session:
            client = client_for(session, settings, clock or SystemClock())
            report = await sync_org(
                db, client, dry_run=dry_run, force=force, person_key=settings.org_person_key
            )
    finally:
        if db is not None:
            await db.dispose()
    return report, note
