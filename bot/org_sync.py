"""A chat platform's contacts published as the organisation directory, and one person's WeCom and
DingTalk identities merged into ONE directory user: the platform-neutral part of
`ticketbot org sync --from wecom|dingtalk` (and of the scheduled syncs).

An adapter (`bot.wecom.org_sync`, `bot.dingtalk.org_sync`) reads its platform's departments and
members and maps them to `Member` / `PlatformDepartment` (a `Fetched`); `sync` plans what to
publish against the directory as it is, applies the safety valves, and publishes it as the
platform's source with `store.directory.replace_org`. This module imports no platform adapter.

Usernames. A member with no directory user yet gets username = its platform id, unchanged (case
kept), or `<id>@<source>` (`@wecom`, `@dingtalk`) when any user already has that username
(compared case-insensitively). A user the platform's source owns keeps its username for good: it
is found again by its platform id (`wecom_userid`, `dingtalk_staff_id`; WeCom ids compare
case-insensitively, DingTalk ids exactly).

Merging by person key (`TICKETBOT_ORG_PERSON_KEY`: "mobile", the default, or "email"; compared
normalised: a mobile as its digits with a leading +86 / 86 / 0086 stripped, an e-mail trimmed and
lower-cased; an empty key never matches). A member is the same person as a user of ANOTHER source
(config/org.yaml's "config", or the other platform) when
  1. that user already carries the member's platform id (org.yaml gave it, or an earlier sync
     linked it), or
  2. the member has no directory user yet, and exactly one user of another source that carries no
     id of this platform has the member's person key, and no other member of this platform has
     that key.
Such a member is not published as a user of its own: its platform id is LINKED onto that user
(`store.directory.Links.attach`), so the same username is reached from both platforms (a ticket
created from WeCom can be approved from DingTalk), and departments it leads point at that user.
The user keeps its owner: its name, contact details and departments stay those of the source that
owns it; the linking platform only adds its id, and only while the member is active there (a
linked id means the person is reachable on that platform). When the key matches several users (or several
members share it) nothing is merged: the member gets a user of its own, a warning names the users,
and the summary lists it under "not merged". Merging is decided when a member first appears; a
member that already has a user of its own is never merged later.

Leaving a platform (missing from its answer, or inactive there: WeCom status other than 1, DingTalk
`active` false) never deletes anybody, and a person is active while they are active on at least
one platform:
  - a user this platform owns that left it is DEACTIVATED, unless it carries the other platform's
    id (linked: active there at that platform's last sync); then it is HANDED OVER to the other
    platform's source instead (it stays active, this platform's id is cleared, and the other
    platform's next sync refreshes it as its own);
  - a user of the other platform that carries this platform's id has that id removed (UNLINKED);
    it stays as active as its owner says;
  - a user of the other platform that is inactive (it left that platform) but whose person is an
    active member here is TAKEN OVER by this platform (owner changed, active again, same username);
  - users of the config source are never changed by a sync except for a link: org.yaml owns them
    (`serve` republishes it at start and keeps the links; an id written in org.yaml wins).

Departments: department ids are shared by all sources. A department id owned by the config source
is refused (nothing published); one owned by the other platform is left to it and counted as
shared (both platforms describe one company: their root departments have the same id, 1). A
department's leader is its first leader that is a synced member (mapped to that member's user).

Safety valves (each refuses and changes nothing): no member at all; and more than half of this
platform's active users leaving at once (users it owns plus users of the other platform linked to
it, whether missing from the answer or inactive in it), unless there are only a few
(`SMALL_DIRECTORY` or fewer). `force=True` lifts the second one; a dry run reports it instead.

Two syncs in one process (the WeCom and DingTalk jobs of `serve`) plan and publish one at a time,
so a person seen by both on an empty directory still becomes ONE user. Runs from two processes at
the same time (the CLI while `serve` syncs) are not serialised: avoid them on a fresh directory.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from config.settings import Settings, redact_url
from core.org import Department, Org, User
from store.db import Database
from store.directory import PLATFORM_ID_COLUMNS, Links, Owners, load_org, load_owners, replace_org
from store.migrate import current_revision_async, head_revision, upgrade_async

PERSON_KEYS = ("mobile", "email")
SMALL_DIRECTORY = 4  # up to this many active users of a platform, a sync may take any number away
MAX_DEPARTMENT_ID = 2**31 - 1  # org_department.id is a 32-bit integer
CONFIG_SOURCE = "config"


def _same(value: str) -> str:
    return value


@dataclass(frozen=True, slots=True)
class Platform:
    """What the neutral sync needs to know about a platform."""

    source: str  # "wecom" | "dingtalk": the directory source, and `--from`
    label: str  # "WeCom" | "DingTalk", in messages
    fold: Callable[[str], str] = _same  # how two platform ids compare
    visibility_hint: str = ""  # what to check when the platform's answer may be partial

    @property
    def id_field(self) -> str:
        """The User attribute (and org_user column) with this platform's id."""
        return PLATFORM_ID_COLUMNS[self.source]

    @property
    def suffix(self) -> str:
        return "@" + self.source

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"ticketbot.{self.source}.org_sync")


@dataclass(frozen=True, slots=True)
class Member:
    """One member as the platform describes it."""

    platform_id: str
    alias: str = ""
    email: str = ""
    phone: str = ""
    dept_ids: tuple[int, ...] = ()  # the main department first
    active: bool = True
    avatar: str = ""


@dataclass(frozen=True, slots=True)
class PlatformDepartment:
    id: int
    name: str
    parent_id: int = 0  # 0: a root (of what the app can see)
    leaders: tuple[str, ...] = ()  # platform ids, in the platform's order


@dataclass(frozen=True, slots=True)
class Fetched:
    members: tuple[Member, ...]
    departments: tuple[PlatformDepartment, ...]


# ---------------------------------------------------------------- errors


class OrgSyncError(Exception):
    """The directory cannot be published (collision with another source, nothing fetched, ...)."""


class MassDeactivationRefused(OrgSyncError):
    """The sync would take more than half of a platform's active users away: nothing was published."""

    def __init__(
        self, deactivating: int, active: int, missing: int, disabled: int, *, platform: Platform
    ) -> None:
        self.deactivating = deactivating
        self.active = active
        self.missing = missing
        self.disabled = disabled
        label = platform.label
        self.summary = (
            f"the sync would deactivate {deactivating} of the {active} active {label} users "
            f"({missing} missing from {label}'s answer, {disabled} disabled in {label}), more than half"
        )
        super().__init__(
            f"{self.summary}: nothing published. {label}'s answer may be incomplete "
            f"({platform.visibility_hint}); if it is right, run "
            f"`ticketbot org sync --from {platform.source} --force` once"
        )


# ---------------------------------------------------------------- person keys


def normalise_mobile(value: str) -> str:
    """Digits only, a leading 0086 / +86 / 86 country code stripped ("+86 138-0000-0000" ->
    "13800000000"; a bare 86 only from a number longer than 11 digits, so an 11-digit mobile is
    never cut). Numbers of other countries keep their code."""
    digits = "".join(ch for ch in value if ch in "0123456789")
    if digits.startswith("0086"):
        return digits[4:]
    if digits.startswith("86") and len(digits) > 11:
        return digits[2:]
    return digits


def normalise_email(value: str) -> str:
    return value.strip().lower()


def person_key(kind: str, *, phone: str, email: str) -> str:
    """The normalised person key of `kind` ("mobile" or "email"); "" when there is none."""
    if kind == "mobile":
        return normalise_mobile(phone)
    if kind == "email":
        return normalise_email(email)
    raise ValueError(f"unknown person key {kind!r} (one of {', '.join(PERSON_KEYS)})")


# ---------------------------------------------------------------- planning


@dataclass(frozen=True, slots=True)
class Ambiguity:
    """A member whose person key matched several users (or other members): not merged."""

    platform_id: str
    key: str  # "mobile" | "email" (the kind, never the value)
    matches: tuple[str, ...]  # the usernames (or "<label> member <id>") sharing it

    def describe(self) -> str:
        return f"{self.platform_id} ({self.key} shared by {', '.join(self.matches)})"


@dataclass(frozen=True, slots=True)
class Plan:
    """What publishing a platform's answer does (see the module docstring)."""

    org: Org  # the users and departments this platform owns
    links: Links
    members: int
    inactive: int
    renamed: tuple[tuple[str, str], ...]  # (platform id, username) for a username already taken
    merged: tuple[tuple[str, str], ...]  # (platform id, username of another source's user)
    linked: tuple[tuple[str, str], ...]  # merged and newly linked: (platform id, username)
    unlinked: tuple[str, ...]  # users of the other platform whose id of this platform is removed
    handed_over: tuple[tuple[str, str], ...]  # (username, new source)
    taken_over: tuple[str, ...]  # inactive users of the other platform this one takes over
    ambiguous: tuple[Ambiguity, ...]
    shared_departments: tuple[int, ...]  # department ids left to the other platform
    deactivated: tuple[str, ...]  # active users of this platform that left it
    removed_departments: tuple[int, ...]
    leaving_active: int  # for the mass-deactivation guard: active users of this platform ...
    leaving_missing: int  # ... of which missing from the answer
    leaving_disabled: int  # ... of which inactive in it


def _platform_ids(user: User) -> dict[str, str]:
    """source -> that platform's id on `user` (non-empty ones only)."""
    found = {source: str(getattr(user, column)) for source, column in PLATFORM_ID_COLUMNS.items()}
    return {source: value for source, value in found.items() if value}


def plan(
    fetched: Fetched, before: Org, owners: Owners, platform: Platform, *, key_kind: str = "mobile"
) -> Plan:
    """Decide what publishing `fetched` as `platform.source` does (see the module docstring).

    Raises OrgSyncError when a department id belongs to the config source or does not fit."""
    source, fold, column = platform.source, platform.fold, platform.id_field

    def owner(username: str) -> str:
        return owners.users.get(username, CONFIG_SOURCE)

    def pid(user: User) -> str:
        return str(getattr(user, column))

    # a row per platform id: other sources first (config, then the other platform), then our own
    by_pid: dict[str, str] = {}
    for name in sorted(before.users, key=lambda n: (owner(n) == source, owner(n) != CONFIG_SOURCE, n)):
        if pid(before.users[name]):
            by_pid.setdefault(fold(pid(before.users[name])), name)
    by_key: dict[str, list[str]] = {}
    for name, user in sorted(before.users.items()):
        key = person_key(key_kind, phone=user.phone, email=user.email)
        if key and owner(name) != source and not pid(user):
            by_key.setdefault(key, []).append(name)
    member_keys = Counter(
        k for k in (person_key(key_kind, phone=m.phone, email=m.email) for m in fetched.members) if k
    )

    taken = {name.casefold() for name in before.users}
    claimed: dict[str, Member] = {}  # username -> the member that is this user
    names: dict[str, str] = {}  # folded platform id -> username
    users: list[User] = []
    attach: dict[str, str] = {}
    detach: list[str] = []
    hand_over: dict[str, str] = {}
    renamed: list[tuple[str, str]] = []
    merged: list[tuple[str, str]] = []
    linked: list[tuple[str, str]] = []
    taken_over: list[str] = []
    ambiguous: list[Ambiguity] = []

    def own(member: Member, username: str, row: User | None) -> User:
        user = User(
            username=username,
            alias=member.alias,
            email=member.email,
            phone=member.phone,
            dept_ids=member.dept_ids,
            is_active=member.active,
            avatar=member.avatar,
        )
        ids: dict[str, Any] = {
            c: str(getattr(row, c)) for c in PLATFORM_ID_COLUMNS.values() if row is not None and c != column
        }
        ids[column] = member.platform_id  # the other platform's id is kept as the row has it
        return replace(user, **ids)

    def new_username(platform_id: str) -> str:
        name = platform_id
        n = 1
        while name.casefold() in taken:
            n += 1
            name = platform_id + platform.suffix + ("" if n == 2 else str(n - 1))
        taken.add(name.casefold())
        if name != platform_id:
            renamed.append((platform_id, name))
        return name

    def by_person(member: Member) -> str | None:
        key = person_key(key_kind, phone=member.phone, email=member.email)
        if not key:
            return None
        if member_keys[key] > 1:
            others = [
                f"{platform.label} member {m.platform_id}"
                for m in fetched.members
                if m.platform_id != member.platform_id
                and person_key(key_kind, phone=m.phone, email=m.email) == key
            ]
            ambiguous.append(Ambiguity(member.platform_id, key_kind, tuple(others)))
            return None
        candidates = [n for n in by_key.get(key, ()) if n not in claimed]
        if len(candidates) > 1:
            ambiguous.append(Ambiguity(member.platform_id, key_kind, tuple(candidates)))
            return None
        return candidates[0] if candidates else None

    for member in fetched.members:
        folded = fold(member.platform_id)
        if folded in names:  # the platform listed one id twice
            continue
        row_name = by_pid.get(folded)
        if row_name is not None and row_name in claimed:
            row_name = None
        if row_name is None:
            row_name = by_person(member)
        if row_name is None:
            username = new_username(member.platform_id)
            names[folded] = username
            users.append(own(member, username, None))
            continue
        names[folded] = row_name
        claimed[row_name] = member
        row = before.users[row_name]
        row_owner = owner(row_name)
        others = {s: v for s, v in _platform_ids(row).items() if s != source}
        if row_owner == source:
            if not member.active and others:
                hand_over[row_name] = next(iter(others))
            else:
                users.append(own(member, row_name, row))
        elif row_owner in PLATFORM_ID_COLUMNS:  # the other platform's user
            if member.active and not row.is_active:
                users.append(own(member, row_name, row))
                taken_over.append(row_name)
            elif member.active:
                merged.append((member.platform_id, row_name))
                if pid(row) != member.platform_id:
                    attach[row_name] = member.platform_id
                    linked.append((member.platform_id, row_name))
            else:
                merged.append((member.platform_id, row_name))
                if pid(row):
                    detach.append(row_name)
        else:  # a config user: only ever linked
            merged.append((member.platform_id, row_name))
            if member.active and not pid(row):
                attach[row_name] = member.platform_id
                linked.append((member.platform_id, row_name))

    deactivated: list[str] = []
    for name, user in sorted(before.users.items()):
        if name in claimed:
            continue
        if owner(name) == source:
            others = {s: v for s, v in _platform_ids(user).items() if s != source}
            if others and user.is_active:
                hand_over[name] = next(iter(others))
            elif user.is_active:
                deactivated.append(name)
        elif owner(name) in PLATFORM_ID_COLUMNS and pid(user):
            detach.append(name)

    # the guard: active users of this platform (owned, or of the other platform and linked to it)
    watched = [
        n
        for n, u in before.users.items()
        if u.is_active and (owner(n) == source or (owner(n) in PLATFORM_ID_COLUMNS and pid(u)))
    ]
    missing = sum(1 for n in watched if n not in claimed)
    disabled = sum(1 for n in watched if n in claimed and not claimed[n].active)

    departments, shared = _departments(fetched, owners, platform, names)
    own_departments = {i for i, s in owners.departments.items() if s == source}
    ambiguous_sorted = tuple(ambiguous)
    for found in ambiguous_sorted:
        platform.log.warning(
            f"{platform.label} member not merged: its person key matches several users",
            extra={"member": found.platform_id, "person_key": found.key, "matches": ", ".join(found.matches)},
        )
    return Plan(
        org=Org.build(users, departments),
        links=Links(attach=attach, detach=tuple(sorted(set(detach))), hand_over=hand_over),
        members=len(names),
        inactive=sum(1 for m in {fold(m.platform_id): m for m in fetched.members}.values() if not m.active),
        renamed=tuple(renamed),
        merged=tuple(merged),
        linked=tuple(linked),
        unlinked=tuple(sorted(set(detach))),
        handed_over=tuple(sorted(hand_over.items())),
        taken_over=tuple(sorted(taken_over)),
        ambiguous=ambiguous_sorted,
        shared_departments=shared,
        deactivated=tuple(deactivated),
        removed_departments=tuple(sorted(own_departments - {d.id for d in departments})),
        leaving_active=len(watched),
        leaving_missing=missing,
        leaving_disabled=disabled,
    )


def _departments(
    fetched: Fetched, owners: Owners, platform: Platform, names: Mapping[str, str]
) -> tuple[list[Department], tuple[int, ...]]:
    """The departments to publish, and the ids left to the other platform."""
    label, source = platform.label, platform.source
    bad = sorted(d.id for d in fetched.departments if not 0 < d.id <= MAX_DEPARTMENT_ID)
    if bad:
        raise OrgSyncError(
            f"{label} department ids {', '.join(map(str, bad))} do not fit the directory "
            f"(1..{MAX_DEPARTMENT_ID}): nothing published"
        )
    clashes = sorted(d.id for d in fetched.departments if owners.departments.get(d.id) == CONFIG_SOURCE)
    if clashes:
        raise OrgSyncError(
            f"{label} department ids {', '.join(f'{i} ({CONFIG_SOURCE})' for i in clashes)} already belong "
            "to another source: nothing published. Department ids are shared by all sources; point "
            "TICKETBOT_CONFIG_DIR at a config whose org.yaml does not use these ids (config/org.yaml "
            "stays the offline demo directory)"
        )
    shared = tuple(
        sorted(d.id for d in fetched.departments if owners.departments.get(d.id, source) != source)
    )
    departments = []
    for d in sorted(fetched.departments, key=lambda d: d.id):
        if d.id in shared:
            continue
        leader = next((names[platform.fold(x)] for x in d.leaders if platform.fold(x) in names), "")
        departments.append(
            Department(id=d.id, name=d.name or str(d.id), parent_id=d.parent_id, leader=leader)
        )
    return departments, shared


def refusal(found: Plan, platform: Platform) -> MassDeactivationRefused | None:
    """The refusal when publishing would take more than half of the platform's active users away."""
    active, leaving = found.leaving_active, found.leaving_missing + found.leaving_disabled
    if active <= SMALL_DIRECTORY or 2 * leaving <= active:
        return None
    return MassDeactivationRefused(
        leaving, active, found.leaving_missing, found.leaving_disabled, platform=platform
    )


# ---------------------------------------------------------------- syncing


@dataclass(frozen=True, slots=True)
class SyncReport:
    platform: Platform
    dry_run: bool
    departments: int
    users: int  # members in the platform's answer
    inactive: int  # of which inactive there
    added: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: int
    deactivated: tuple[str, ...]  # users of this platform that left it (and are on no other)
    removed_departments: tuple[int, ...]
    renamed: tuple[tuple[str, str], ...] = ()
    merged: tuple[tuple[str, str], ...] = ()
    linked: tuple[tuple[str, str], ...] = ()
    unlinked: tuple[str, ...] = ()
    handed_over: tuple[tuple[str, str], ...] = ()
    taken_over: tuple[str, ...] = ()
    ambiguous: tuple[Ambiguity, ...] = ()
    shared_departments: tuple[int, ...] = ()
    warning: str = ""  # dry runs: why a real sync would be refused


_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _publish_lock() -> asyncio.Lock:
    """One lock per event loop: syncs of one process plan and publish one at a time."""
    loop = asyncio.get_running_loop()
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    return lock


async def sync(
    db: Database | None,
    platform: Platform,
    fetch: Callable[[], Awaitable[Fetched]],
    *,
    person_key: str = "mobile",
    dry_run: bool = False,
    force: bool = False,
) -> SyncReport:
    """Fetch the platform's directory and, unless `dry_run`, publish it (see the module docstring).

    Raises what `fetch` raises when the platform refuses; OrgSyncError when it returned no member at
    all or a department id belongs to the config source; MassDeactivationRefused (an OrgSyncError)
    when more than half of the platform's active users would go and `force` is not set (a dry run
    reports that in `warning` instead). Nothing is written when it raises. The database must be
    migrated; `db` None (dry runs only) compares with an empty directory."""
    if db is None and not dry_run:
        raise OrgSyncError("a database is needed to publish the directory")
    if person_key not in PERSON_KEYS:
        raise OrgSyncError(f"unknown person key {person_key!r} (one of {', '.join(PERSON_KEYS)})")
    fetched = await fetch()
    if not fetched.members:
        raise OrgSyncError(
            f"{platform.label} returned no members: nothing published (it would deactivate every "
            f"{platform.label} user); check {platform.visibility_hint}"
        )
    async with _publish_lock():
        before = await load_org(db) if db is not None else Org()
        owners = await load_owners(db) if db is not None else Owners({}, {})
        found = plan(fetched, before, owners, platform, key_kind=person_key)
        refused = None if force else refusal(found, platform)
        if refused is not None and not dry_run:
            raise refused
        org = found.org
        added = tuple(sorted(n for n in org.users if n not in before.users))
        updated = tuple(sorted(n for n, u in org.users.items() if n in before.users and before.users[n] != u))
        deactivated, removed = found.deactivated, found.removed_departments
        if not dry_run:
            assert db is not None
            result = await replace_org(db, org, platform.source, links=found.links)
            deactivated, removed = result.deactivated, result.removed_departments
    return SyncReport(
        platform=platform,
        dry_run=dry_run,
        departments=len(org.departments),
        users=found.members,
        inactive=found.inactive,
        added=added,
        updated=updated,
        unchanged=len(org.users) - len(added) - len(updated),
        deactivated=deactivated,
        removed_departments=removed,
        renamed=found.renamed,
        merged=found.merged,
        linked=found.linked,
        unlinked=found.unlinked,
        handed_over=found.handed_over,
        taken_over=found.taken_over,
        ambiguous=found.ambiguous,
        shared_departments=found.shared_departments,
        warning=f"{refused.summary}: a real sync would be refused (--force publishes it anyway)"
        if refused is not None
        else "",
    )


# ---------------------------------------------------------------- the command line


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


async def open_database(settings: Settings, *, dry_run: bool) -> tuple[Database | None, str]:
    """The database a `ticketbot org sync` works on, and a note for the user.

    Publishing migrates it first; a dry run writes nothing (and gets None, comparing with an empty
    directory, when the database is not migrated yet). The caller disposes of it."""
    if not dry_run:
        await upgrade_async(settings.database_url)
        return Database(settings.database_url), ""
    if await _migrated(settings.database_url):
        return Database(settings.database_url), ""
    return None, (
        f"database {redact_url(settings.database_url)} is not migrated: compared with an empty directory"
    )


def _names(items: Iterable[str], limit: int = 10) -> str:
    shown = list(items)
    if not shown:
        return ""
    more = f", ... (+{len(shown) - limit})" if len(shown) > limit else ""
    return ": " + ", ".join(shown[:limit]) + more


def format_report(report: SyncReport) -> str:
    """The summary `ticketbot org sync` prints."""
    label, source = report.platform.label, report.platform.source
    verb = " would be" if report.dry_run else ""
    head = "dry run: nothing written" if report.dry_run else f"published as source '{source}'"
    shared = (
        f", {len(report.shared_departments)} left to another platform{_names(str(i) for i in report.shared_departments)}"
        if report.shared_departments
        else ""
    )
    lines = [
        f"{label} directory {head}",
        f"  departments: {report.departments} (removed {len(report.removed_departments)}"
        f"{_names(str(i) for i in report.removed_departments)}{shared})",
        f"  users: {report.users} ({report.inactive} inactive in {label})",
        f"  added{verb}: {len(report.added)}{_names(report.added)}",
        f"  updated{verb}: {len(report.updated)}{_names(report.updated)}",
        f"  unchanged: {report.unchanged}",
        f"  deactivated{verb} (left {label}): {len(report.deactivated)}{_names(report.deactivated)}",
    ]
    optional = [
        ("renamed (username taken by another user)", [f"{a} -> {b}" for a, b in report.renamed]),
        ("merged (the same person as another source's user)", [f"{a} = {b}" for a, b in report.merged]),
        (f"linked{verb} (now also reached from {label})", [f"{a} = {b}" for a, b in report.linked]),
        (f"unlinked{verb} (left {label}, kept by their owner)", list(report.unlinked)),
        (
            f"handed over{verb} (left {label}, still on another platform)",
            [f"{a} -> {b}" for a, b in report.handed_over],
        ),
        (f"taken over{verb} (inactive elsewhere, active in {label})", list(report.taken_over)),
        ("not merged (person key shared)", [a.describe() for a in report.ambiguous]),
    ]
    for title, items in optional:
        if items:
            lines.append(f"  {title}: {len(items)}{_names(items)}")
    if report.warning:
        lines.append(f"  warning: {report.warning}")
    return "\n".join(lines)
