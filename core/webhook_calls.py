"""Webhook calls: signed ``work_order_change`` POSTs to the API apps that subscribe to them.

A call is written in the SAME transaction as the ticket change that causes it (store.tickets ->
store.webhooks), one per (change status, subscribed app), so a committed change always has its
calls and a rolled-back one never does; its ``dedupe_key`` (app, ticket, ticket version, position,
status) makes a replayed write of the same change a no-op. Its life::

    "pending" --POST 2xx--> "sent"
              --4xx (but 408 / 429)--> "dead" at once
              --transport error, timeout, 408, 429, 3xx, 5xx--> "pending" again later (backoff)
              ... the MAX_ATTEMPTS-th failed attempt --> "dead"
    "dead" --`ticketbot outbox retry --kind webhook`--> "pending" (due now, retry_count 0)

Claims: a sender takes due "pending" calls with `claim_due` (claimed_by, claimed_until = now +
lease; SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL), so several processes never POST one call
at the same time; a claim whose lease ran out (its worker died) is claimable again. A call is not
claimable while an earlier call of the same app and ticket is pending, so an app gets the changes
of a work order in order, one at a time (a dead call no longer holds the later ones). Delivery is
at least once: a worker that dies after the POST and before recording it leaves the call to be
POSTed again, so receivers deduplicate on the envelope's ``id``.

The app's webhook secret is never stored: the sender reads it from the config when it signs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

PENDING, SENT, DEAD = "pending", "sent", "dead"
STATES = (PENDING, SENT, DEAD)
MAX_ATTEMPTS = 8  # failed attempts (transport errors, timeouts, 5xx, 408, 429) before "dead"
EVENT = "work_order_change"


@dataclass(frozen=True, slots=True)
class Subscription:
    """An API app that receives work_order_change webhooks at `url`, for the work orders of
    `workflow_ids` (None: of every workflow; the apps.yaml ``workflows`` grant)."""

    app: str
    url: str
    workflow_ids: frozenset[int] | None = None

    def covers(self, workflow_id: int) -> bool:
        return self.workflow_ids is None or workflow_id in self.workflow_ids


@dataclass(frozen=True, slots=True)
class WebhookRoutes:
    """Who gets which changes: the subscriptions, the workflows whose tickets are work orders
    (core.workorder_changes.is_work_order) and the ``corp_id`` every envelope carries."""

    subscriptions: tuple[Subscription, ...] = ()
    workorder_workflow_ids: frozenset[int] = frozenset()
    corp_id: str = ""

    def for_workflow(self, workflow_id: int) -> tuple[Subscription, ...]:
        """The subscriptions that receive the changes of a ticket of `workflow_id`."""
        if workflow_id not in self.workorder_workflow_ids:
            return ()
        return tuple(s for s in self.subscriptions if s.covers(workflow_id))


@dataclass(frozen=True, slots=True)
class WebhookCall:
    """One row of ``webhook_call``. `payload` is the envelope as recorded (staff ids as ticketbot
    usernames, ``retry_count`` 0); the sender maps the staff ids and sets ``retry_count``."""

    id: str  # the envelope's id (a uuid)
    app: str
    url: str
    ticket_id: int
    status: str  # create | switch | close | reopen | reply
    payload: Mapping[str, Any]
    dedupe_key: str
    state: str  # pending | sent | dead
    retry_count: int  # attempts made so far (the next POST says so)
    next_attempt_at: datetime
    last_error: str
    response_status: int | None
    claimed_by: str
    claimed_until: datetime | None
    created_at: datetime
    sent_at: datetime | None


def envelope(
    id: str, corp_id: str, create_time: int, status: str, msg_data: Mapping[str, Any], retry_count: int = 0
) -> dict[str, Any]:
    """The JSON body of a work_order_change webhook (shared/docs/workorder.md)."""
    return {
        "id": id,
        "corp_id": corp_id,
        "create_time": create_time,
        "type": "event",
        "event": EVENT,
        "status": status,
        "retry_count": retry_count,
        "msg_data": dict(msg_data),
    }


class WebhookCalls(Protocol):
    """The webhook calls' storage (store.webhooks.SqlWebhookCalls). Every change but `claim_due`
    is applied only while `worker` holds the claim (claimed_by), and says whether it was."""

    async def claim_due(self, worker: str, now: datetime, limit: int, lease: float) -> Sequence[WebhookCall]:
        """Up to `limit` "pending" calls due by `now` and not claimed (or whose claim expired),
        claimed by `worker` for `lease` seconds; oldest due first."""
        ...

    async def mark_sent(self, id: str, worker: str, now: datetime, response_status: int) -> bool:
        """The receiver answered 2xx: "sent", sent_at = now (claim released)."""
        ...

    async def retry_later(
        self, id: str, worker: str, error: str, at: datetime, *, response_status: int | None = None
    ) -> str | None:
        """A failed attempt: retry_count + 1, due again at `at` ("pending"), or "dead" once
        MAX_ATTEMPTS attempts failed. The state afterwards; None if the claim was lost."""
        ...

    async def mark_dead(
        self,
        id: str,
        worker: str,
        now: datetime,
        error: str,
        *,
        response_status: int | None = None,
        attempted: bool = True,
    ) -> bool:
        """Given up at once (a 4xx refusal; an app no longer subscribed, not `attempted`): "dead"
        (retry_count + 1 when a POST was made; claim released)."""
        ...
