"""What the notifier needs of storage (store.deliveries.SqlDeliveries in the app) and of a platform.

A *delivery* is one message to one person on one platform (table ``delivery``). Its life:

    planned (status "pending", due_at) --send--> "sent" (msg_id, task_id, response_code, live)
                                       --cancel--> "cancelled"     --give up--> "dead"

A sent card with buttons is ``live`` until it is *closed*: a close is requested (``close_due_at``,
``close_note``), then the dispatcher turns the card into a result card with the single-use
``response_code`` (or, when that is used or expired, sends a fresh notice) and sets ``closed_at``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.cards.model import Card

# kinds
PENDING = "pending"  # a card with the recipient's buttons (待处理)
URGE = "urge"  # 催办: the pending card again, flagged as urged
CC = "cc"  # 抄送: read-only notice
NOTICE = "notice"  # the requester is told what happened
ESCALATE = "escalate"  # SLA escalation: a read-only notice to a handler's department leader
BUTTON_KINDS = frozenset({PENDING, URGE})

# statuses
PLANNED, SENT, CANCELLED, DEAD = "pending", "sent", "cancelled", "dead"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    platform: str
    ticket_id: int
    recipient: str
    address: str
    kind: str
    actor: str
    note: str
    dedupe_key: str
    status: str
    attempts: int
    due_at: datetime
    last_error: str
    task_id: str | None
    msg_id: str
    state_id: int
    version: int
    actions: str
    live: bool
    response_code: str
    code_expires_at: datetime | None
    close_due_at: datetime | None
    close_note: str
    closed_at: datetime | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewDelivery:
    platform: str
    ticket_id: int
    recipient: str
    address: str
    kind: str
    dedupe_key: str
    actor: str = ""
    note: str = ""
    state_id: int = 0
    version: int = 0


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One pending row of the outbox (a domain event written with the ticket change)."""

    id: int
    ticket_id: int | None
    event: str
    payload: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Close:
    delivery_id: int
    note: str


class DeliveryStore(Protocol):
    async def pending_events(self, limit: int) -> Sequence[OutboxEvent]:
        """Outbox rows with status "pending", oldest (lowest id) first."""
        ...

    async def open_for_ticket(self, ticket_id: int) -> Sequence[Delivery]:
        """The ticket's deliveries that may still change: status "pending", or "sent" and (live or
        with a close requested and not done). Lowest id first."""
        ...

    async def commit_plan(
        self,
        event_ids: Sequence[int],
        new: Sequence[NewDelivery],
        closes: Sequence[Close],
        cancels: Sequence[int],
        now: datetime,
    ) -> list[int]:
        """In ONE transaction: mark the outbox rows `event_ids` "sent" (planned); insert `new`
        (due now; a dedupe_key already present is skipped); request each close (close_due_at =
        now, close_note; a close of a delivery still "pending" cancels it instead; a delivery
        already closed is left alone); cancel `cancels` (only those still "pending").
        Returns the ids of the inserted deliveries."""
        ...

    async def due_sends(self, now: datetime, limit: int) -> Sequence[Delivery]:
        """Status "pending" with due_at <= now, lowest id first."""
        ...

    async def due_closes(self, now: datetime, limit: int) -> Sequence[Delivery]:
        """Status "sent", close_due_at <= now and closed_at null, lowest id first."""
        ...

    async def claim_due_sends(
        self, worker: str, now: datetime, limit: int, lease: timedelta
    ) -> Sequence[Delivery]:
        """`due_sends` not claimed by another worker (or whose claim expired), each claimed for
        `worker` until now + lease (PostgreSQL: FOR UPDATE SKIP LOCKED). mark_sent, retry_later,
        cancel and defer finish the claim."""
        ...

    async def claim_due_closes(
        self, worker: str, now: datetime, limit: int, lease: timedelta
    ) -> Sequence[Delivery]:
        """`due_closes`, claimed as in `claim_due_sends` (mark_closed, retry_later finish it)."""
        ...

    async def unclaim(self, id: int, worker: str) -> None:
        """Give up `worker`'s claim on `id` without doing anything (another worker may take it)."""
        ...

    async def defer(self, id: int, due_at: datetime, now: datetime) -> None:
        """Send a "pending" delivery later on purpose (rate limit): due_at, claim finished, the
        attempt NOT counted."""
        ...

    async def mark_sent(
        self,
        id: int,
        *,
        task_id: str | None,
        msg_id: str,
        response_code: str,
        code_expires_at: datetime | None,
        state_id: int,
        version: int,
        actions: str,
        live: bool,
        now: datetime,
    ) -> None: ...

    async def mark_closed(
        self, id: int, now: datetime, *, error: str = "", used_code: str | None = None
    ) -> None:
        """closed_at = now, live false, close_due_at null; response_code "" if it is still
        `used_code` (or always, when None): a code a click stored meanwhile is kept."""
        ...

    async def retry_later(self, id: int, error: str, retry_at: datetime, *, close: bool) -> str:
        """Count a failed attempt. A send: due again at retry_at, or "dead" after the attempt
        limit. A close (`close`): close_due_at = retry_at, or closed (with the error) after the
        limit. Returns the delivery's status afterwards."""
        ...

    async def cancel(self, id: int, reason: str, now: datetime) -> None:
        """A planned delivery that is no longer wanted: "cancelled" with the reason (only if pending)."""
        ...

    async def by_task_id(self, platform: str, task_id: str) -> Delivery | None: ...

    async def store_response_code(
        self, platform: str, task_id: str, response_code: str, expires_at: datetime, now: datetime
    ) -> Delivery | None:
        """A click brought a fresh single-use code for the card `task_id`: keep it (the card can be
        updated once more). Returns the delivery (None if unknown)."""
        ...

    async def request_close(self, id: int, note: str, now: datetime) -> None:
        """Close (again) the sent card `id`: close_due_at = now, close_note = note, closed_at null."""
        ...

    async def last_urge_at(self, ticket_id: int) -> datetime | None:
        """When the ticket was last urged (newest "urge" delivery), by anyone."""
        ...

    async def urged_tickets_since(self, actor: str, since: datetime) -> int:
        """How many distinct tickets `actor` urged since `since`."""
        ...


@dataclass(frozen=True, slots=True)
class SentRef:
    """What a platform answered to a sent card: its message id, the id the card is updated by
    (`task_id`: WeCom task_id, DingTalk outTrackId) and, where updates need one, a single-use
    `response_code` valid for `code_ttl`."""

    msg_id: str
    response_code: str = ""
    task_id: str | None = None
    code_ttl: timedelta | None = None


class SendFailed(Exception):
    """A platform refused or failed a send/update. `retry_after` (seconds) None: don't retry."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        code_used: bool = False,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.code_used = code_used  # an update failed because the response_code is used/expired
        # the recipient's message limit: deferred by retry_after, not counted as a failed attempt
        self.rate_limited = rate_limited


class Sender(Protocol):
    """One platform's way to deliver neutral cards. Raises SendFailed."""

    platform: str

    def address_of(self, user: Any) -> str:
        """The user's id on this platform ("" if they have none). `user` is a core.org.User."""
        ...

    async def send_card(self, delivery: Delivery, card: Card, *, fresh: int = 0) -> SentRef:
        """Send `card` to `delivery.address`. `fresh` > 0: another message about the same
        delivery (e.g. its result after the card's response_code expired), with a new task id."""
        ...

    def can_update(self, delivery: Delivery, now: datetime) -> bool:
        """Whether the sent card `delivery` may still be changed in place (else a fresh message)."""
        ...

    async def update_card(self, delivery: Delivery, card: Card) -> None:
        """Replace the sent card `delivery` (its task_id and response_code) with `card`."""
        ...

    async def send_text(self, address: str, text: str) -> None: ...
