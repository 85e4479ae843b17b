"""The full reconcile of the customers (客户, WeCom external contacts) with WeCom: what one run of
the scheduled job (TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES, bot/wecom/customer_reconcile_job.py) and
`ticketbot customers sync` do. Events (bot/wecom/customers.py) keep customers current one by one; a
callback WeCom never delivered is corrected here.

One run:

1. the live (not deleted) customers stored now are noted (`stored`);
2. who may have customers: `externalcontact/get_follow_user_list` (the members with the customer
   contact feature); when the app may not call it (48002 / 84074), the active users of the
   directory that have a WeCom userid (a WARNING says so);
3. `externalcontact/list` for each of them (`listed_users`), CONCURRENCY calls at a time: the
   customers `seen`. A member without customers (84061) or unknown to WeCom (60111) has none; any
   other refusal makes the member one of the `failed_users`;
4. each customer seen is refreshed exactly as an event refreshes it (`CustomerSync.refresh`:
   `externalcontact/get`, then added / updated / unchanged / deleted);
5. the stored live customers no list named (`missing`) are refreshed the same way, so one is marked
   deleted only when WeCom confirms that nobody has them any more (84061 / 40096, no follow user);
   one WeCom still shows with a follow user is kept. This step is skipped when a list call of the
   run failed (a partial run never deletes), and refused (`refused`: how many were kept) when it
   would take away more than half of the stored live customers while there are more than
   SMALL_STORE of them: WeCom may have answered only part of the lists.

A refresh that fails (WeCom busy, unreachable, refusing) counts in `failed` and changes nothing for
that customer. Only a failure of step 2 fails the whole run (WeComError raised, nothing written).
A customer changed by an event while the run reads it may be written back as the run read it;
the next event or run corrects that. `dry_run` reads everything and writes nothing: the counts say
what a run would do.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

import aiohttp

from bot.clock import SystemClock
from bot.org_sync import open_database
from bot.wecom.client import NoPermission, WeComClient, WeComError
from bot.wecom.contacts import ExternalContacts, UnknownMember
from bot.wecom.customers import CustomerSync, RetryLater
from config.settings import PREFIX, Settings, redact_url
from core.ports import Clock
from core.workorder import Customer
from store.customers import SqlCustomers
from store.db import Database
from store.directory import SqlDirectory

log = logging.getLogger("ticketbot.wecom.customers")

__all__ = [
    "CONCURRENCY",
    "SMALL_STORE",
    "CustomerSyncError",
    "ReconcileReport",
    "directory_staff",
    "format_report",
    "missing_settings",
    "reconcile",
    "run_customer_sync",
]

CONCURRENCY = 4  # WeCom calls in flight at once in a run
SMALL_STORE = 4  # up to this many stored live customers, a run may delete any number of them
NAMES_SHOWN = 10


class CustomerSyncError(Exception):
    """The sync cannot run (e.g. WeCom is not configured); nothing was asked or written."""


class Contacts(Protocol):
    """What a reconcile needs of WeCom (bot.wecom.contacts.ExternalContacts)."""

    async def follow_user_ids(self) -> list[str]: ...
    async def ids_of(self, userid: str) -> list[str]: ...
    async def get(self, external_userid: str) -> Customer: ...


class StoredCustomers(Protocol):
    """What a reconcile needs of the store (store.customers.SqlCustomers)."""

    async def upsert(self, c: Customer, now: datetime) -> None: ...
    async def mark_deleted(self, external_userid: str, now: datetime) -> bool: ...
    async def get(self, external_userid: str) -> Customer | None: ...
    async def many(self, ids: Sequence[str]) -> dict[str, Customer]: ...
    async def live_ids(self) -> list[str]: ...


Staff = Callable[[], Awaitable[list[str]]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What a run did (a dry run: would do). See the module docstring for each count."""

    dry_run: bool = False
    users_from: str = "follow_user_list"  # or "directory"
    listed_users: int = 0
    failed_users: tuple[str, ...] = ()
    seen: int = 0
    stored: int = 0
    missing: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    refused: int = 0
    failed: int = 0
    duration_ms: int = 0
    first_error: str = ""  # what WeCom said to the first call that failed

    @property
    def complete(self) -> bool:
        """Every list and refresh succeeded and no safety valve held."""
        return not (self.failed_users or self.failed or self.refused)


@dataclass(slots=True)
class _Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


class _Unwritten:
    """The store as it is, with nothing written (a dry run); `inner` None: an empty store."""

    def __init__(self, inner: StoredCustomers | None) -> None:
        self._inner = inner

    async def upsert(self, c: Customer, now: datetime) -> None:
        return None

    async def mark_deleted(self, external_userid: str, now: datetime) -> bool:
        return True

    async def get(self, external_userid: str) -> Customer | None:
        return None if self._inner is None else await self._inner.get(external_userid)

    async def many(self, ids: Sequence[str]) -> dict[str, Customer]:
        return {} if self._inner is None else await self._inner.many(ids)

    async def live_ids(self) -> list[str]:
        return [] if self._inner is None else await self._inner.live_ids()


async def _each(items: Sequence[T], work: Callable[[T], Awaitable[None]], limit: int) -> None:
    """`await work(item)` for every item, at most `limit` at a time; the first exception propagates
    once the other workers are cancelled."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:  # shared: each item is taken by one worker
            await work(item)

    tasks = [asyncio.create_task(worker()) for _ in range(min(limit, len(items)))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _ms(clock: Clock, since: datetime) -> int:
    return int((clock.now() - since).total_seconds() * 1000)


async def reconcile(
    contacts: Contacts,
    customers: StoredCustomers,
    *,
    clock: Clock,
    staff: Staff | None = None,
    dry_run: bool = False,
    concurrency: int = CONCURRENCY,
) -> ReconcileReport:
    """One run (see the module docstring). `staff`: the directory's WeCom userids, asked when the
    follow user list may not be read (None: nobody). Raises WeComError when WeCom refuses the follow
    user list (nothing written); a store failure propagates."""
    started = clock.now()
    store: StoredCustomers = _Unwritten(customers) if dry_run else customers
    sync = CustomerSync(contacts, store, clock)
    stored = await store.live_ids()
    users_from = "follow_user_list"
    try:
        userids = await contacts.follow_user_ids()
    except NoPermission as exc:
        users_from = "directory"
        userids = list(dict.fromkeys(await staff())) if staff is not None else []
        log.warning(
            "wecom follow user list not readable: the directory's WeCom users are listed instead",
            extra={"errcode": exc.errcode, "error": str(exc), "users": len(userids)},
        )

    seen: dict[str, None] = {}
    failed_users: list[str] = []
    tally = _Tally()

    async def list_one(userid: str) -> None:
        try:
            ids = await contacts.ids_of(userid)
        except UnknownMember:
            return  # not a member (any more): no customers
        except WeComError as exc:
            failed_users.append(userid)
            tally.errors.append(f"externalcontact/list {userid}: {exc}")
            return
        seen.update(dict.fromkeys(ids))

    async def refresh_one(external_userid: str) -> None:
        try:
            outcome = await sync.refresh(external_userid)
        except RetryLater as exc:
            outcome = "refused"
            tally.errors.append(exc.reason)
        tally.outcomes[outcome] += 1

    await _each(userids, list_one, concurrency)
    await _each(list(seen), refresh_one, concurrency)
    missing = [ext for ext in stored if ext not in seen]
    refused = 0
    if missing and not failed_users:
        if len(stored) > SMALL_STORE and 2 * len(missing) > len(stored):
            refused = len(missing)
            log.error(
                "WeCom customer reconcile refused: nothing deleted",
                extra={
                    "missing": len(missing),
                    "stored": len(stored),
                    "dry_run": dry_run,
                    "error": f"{len(missing)} of the {len(stored)} stored customers are on no member's "
                    "list: more than half, so WeCom may have answered only part; nothing deleted",
                },
            )
        else:
            await _each(missing, refresh_one, concurrency)
    out = tally.outcomes
    return ReconcileReport(
        dry_run=dry_run,
        users_from=users_from,
        listed_users=len(userids),
        failed_users=tuple(sorted(failed_users)),
        seen=len(seen),
        stored=len(stored),
        missing=len(missing),
        added=out["stored"],
        updated=out["updated"],
        unchanged=out["unchanged"] + out["gone-unknown"],
        deleted=out["deleted"],
        refused=refused,
        failed=out["refused"],
        duration_ms=_ms(clock, started),
        first_error=tally.errors[0] if tally.errors else "",
    )


async def directory_staff(db: Database) -> list[str]:
    """The WeCom userids of the directory's active users (the fallback of step 2)."""
    org = await SqlDirectory(db).org()
    return [u.wecom_userid for u in org.users.values() if u.is_active and u.wecom_userid]


def missing_settings(settings: Settings) -> list[str]:
    """The TICKETBOT_WECOM_* variables a customer sync needs and `settings` lacks."""
    need = {"wecom_corp_id": settings.wecom_corp_id, "wecom_secret": settings.wecom_secret}
    return [PREFIX + name.upper() for name, value in need.items() if not value]


async def run_customer_sync(
    settings: Settings, *, dry_run: bool, clock: Clock | None = None
) -> tuple[ReconcileReport, str]:
    """What `ticketbot customers sync` does: (the report, a note for the user). A real run migrates
    the database first; a dry run writes nothing (and starts from no stored customer when the
    database is not migrated). Raises CustomerSyncError when WeCom is not configured, WeComError
    when WeCom refuses the run."""
    missing = missing_settings(settings)
    if missing:
        raise CustomerSyncError(f"WeCom is not configured for a customer sync: set {', '.join(missing)}")
    now = clock or SystemClock()
    db, _ = await open_database(settings, dry_run=dry_run)
    note = (
        ""
        if db is not None
        else (
            f"database {redact_url(settings.database_url)} is not migrated: compared with no stored customer"
        )
    )
    try:
        async with aiohttp.ClientSession() as session:
            client = WeComClient(
                session,
                api_base=settings.wecom_api_base,
                corp_id=settings.wecom_corp_id,
                corp_secret=settings.wecom_secret,
                agent_id=settings.wecom_agent_id or 0,
                clock=now,
            )
            contacts = ExternalContacts(client)
            if db is None:
                report = await reconcile(contacts, _Unwritten(None), clock=now, dry_run=True)
            else:
                report = await reconcile(
                    contacts,
                    SqlCustomers(db),
                    clock=now,
                    staff=lambda: directory_staff(db),
                    dry_run=dry_run,
                )
    finally:
        if db is not None:
            await db.dispose()
    return report, note


def _names(items: Iterable[str]) -> str:
    shown = list(items)
    more = f", ... (+{len(shown) - NAMES_SHOWN})" if len(shown) > NAMES_SHOWN else ""
    return ": " + ", ".join(shown[:NAMES_SHOWN]) + more if shown else ""


def format_report(report: ReconcileReport) -> str:
    """The summary `ticketbot customers sync` prints."""
    verb = " would be" if report.dry_run else ""
    source = "the follow user list" if report.users_from == "follow_user_list" else "the directory"
    lines = [
        "WeCom customers " + ("dry run: nothing written" if report.dry_run else "reconciled"),
        f"  members listed: {report.listed_users} (from {source}), failed: "
        f"{len(report.failed_users)}{_names(report.failed_users)}",
        f"  customers seen: {report.seen}; stored before: {report.stored}; on no list: {report.missing}",
        f"  added{verb}: {report.added}",
        f"  updated{verb}: {report.updated}",
        f"  unchanged: {report.unchanged}",
        f"  deleted{verb}: {report.deleted}",
        f"  failed: {report.failed}",
    ]
    if report.failed_users and report.missing:
        lines.append(
            f"note: nothing deleted: {len(report.failed_users)} list call(s) failed, so the "
            f"{report.missing} customer(s) on no list were not checked"
        )
    if report.refused:
        lines.append(
            f"refused: {report.refused} of the {report.stored} stored customers are on no list (more "
            "than half): none was checked or deleted"
        )
    if report.first_error:
        lines.append(f"first error: {report.first_error}")
    return "\n".join(lines)
