"""Customers (客户, WeCom external contacts) kept current from `change_external_contact` events.

Every change type is handled the same way: the event only says *which* contact changed, so the
contact is read again from WeCom (`externalcontact/get`) and the stored Customer made to match.
That makes processing idempotent (a redelivered or replayed event finds nothing to change and
writes nothing) and order-proof (events processed out of order still end at WeCom's current
state):

- add_external_contact / add_half_external_contact / edit_external_contact / transfer_fail, and
  del_external_contact / del_follow_user while someone still follows them: upsert the contact
  with its current follow users;
- WeCom answers 84061 / 40096 (no member has them any more, or no such contact), or nobody follows
  them: the stored customer is marked deleted (kept, with its last known follow users: work orders
  still name them); an unknown one stays unknown.

Events of one contact are processed one at a time in a process (so an older read never overwrites
a newer one there); across worker processes the next event of the contact corrects such a race.

What is retried (the inbox runs the event again later, with backoff, until its attempt limit):
WeCom unreachable or busy after the client's retries, token and secret refusals, a missing
permission or an untrusted IP (an administrator can fix those and the retry then works), and a
store failure. Those raise `RetryLater` (or the store's error). Everything else is answered for
good: an event without ExternalUserID, an unknown ChangeType, an errcode WeCom will answer again
the same way: logged, not raised.

Each outcome is logged with the external_userid, the change type and the staff userid.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from bot.wecom.callback import InboundEvent
from bot.wecom.client import (
    BadSecret,
    IPNotTrusted,
    NoPermission,
    TokenRejected,
    WeComBusy,
    WeComError,
    WeComUnavailable,
)
from bot.wecom.contacts import MAX_ID_CHARS, NotExternalContact
from core.ports import Clock
from core.workorder import Customer, Customers

log = logging.getLogger("ticketbot.wecom.customers")

EVENT = "change_external_contact"
CHANGE_TYPES = frozenset(
    {
        "add_external_contact",
        "add_half_external_contact",
        "edit_external_contact",
        "del_external_contact",
        "del_follow_user",
        "transfer_fail",
    }
)
RETRIED: tuple[type[WeComError], ...] = (
    WeComUnavailable,
    WeComBusy,
    TokenRejected,
    BadSecret,
    IPNotTrusted,
    NoPermission,
)


class ContactReader(Protocol):
    """What the sync needs of WeCom (bot.wecom.contacts.ExternalContacts)."""

    async def get(self, external_userid: str) -> Customer: ...


class RetryLater(Exception):
    """The event could not be processed now; the inbox runs it again later. `status` and `reason`
    make the inbox log it as a short line, without a stack trace."""

    status = 503

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class CustomerSync:
    """Processes change_external_contact events into `customers`."""

    def __init__(self, contacts: ContactReader, customers: Customers, clock: Clock) -> None:
        self._contacts = contacts
        self._customers = customers
        self._clock = clock
        self._slots: dict[str, _Slot] = {}  # one refresh per contact at a time in this process

    async def on_event(self, event: InboundEvent) -> None:
        extra = {
            "external_userid": event.external_user_id,
            "change_type": event.change_type,
            "userid": event.user_id,
            "dedupe_key": event.dedupe_key,
        }
        if event.change_type not in CHANGE_TYPES:
            log.info("wecom customer event of an unknown change type ignored", extra=extra)
            return
        external_userid = event.external_user_id
        if not external_userid or len(external_userid) > MAX_ID_CHARS:
            log.warning("wecom customer event without a usable ExternalUserID ignored", extra=extra)
            return
        slot = self._slots.setdefault(external_userid, _Slot())
        slot.users += 1
        try:
            async with slot.lock:
                outcome = await self.refresh(external_userid)
        except RetryLater as exc:
            log.warning("wecom customer event left for a retry", extra={**extra, "reason": exc.reason})
            raise
        finally:
            slot.users -= 1
            if not slot.users:
                del self._slots[external_userid]
        log.info("wecom customer event processed", extra={**extra, "outcome": outcome})

    async def refresh(self, external_userid: str) -> str:
        """Make the stored customer match WeCom; what happened: stored, updated, unchanged, deleted,
        gone-unknown (WeCom has no relation and nothing was stored) or refused (WeCom will refuse
        again). Raises RetryLater for what a retry may fix."""
        try:
            current: Customer | None = await self._contacts.get(external_userid)
        except NotExternalContact as exc:
            log.info(
                "wecom says the customer has no relation with the corp any more",
                extra={"external_userid": external_userid, "errcode": exc.errcode},
            )
            current = None
        except RETRIED as exc:
            raise RetryLater(f"externalcontact/get {external_userid}: {exc}") from None
        except WeComError as exc:
            log.error(
                "wecom customer not read; the event is dropped",
                extra={"external_userid": external_userid, "errcode": exc.errcode, "error": str(exc)},
            )
            return "refused"
        stored = await self._customers.get(external_userid)
        now = self._clock.now()
        if current is None or current.deleted:  # the row keeps the last known follow users
            if stored is None:
                return "gone-unknown"
            if stored.deleted:
                return "unchanged"
            await self._customers.mark_deleted(external_userid, now)
            return "deleted"
        if stored == current:
            return "unchanged"
        await self._customers.upsert(current, now)
        return "stored" if stored is None else "updated"


__all__ = ["CHANGE_TYPES", "EVENT", "CustomerSync", "RetryLater"]
