"""`ticketbot outbox list | retry --kind webhook`: the work_order_change webhook calls.

- `list` shows the calls newest first (id, ticket, app, status, state, attempts, when due or
  sent, the receiver's last HTTP status and error), as a table or as JSON;
- `retry` puts "dead" calls back in the queue (pending, due now, retry_count 0); the running
  service POSTs them on its next pass, to the app's webhook_url of the moment.

Webhook call ids are UUIDs (the envelope's ``id``). A URL is shown without its query and
credentials (they may carry tokens).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bot.listing import Kind, one_line, retry, show, table, time_text
from config.settings import Settings
from core.webhook_calls import DEAD, SENT, STATES, WebhookCall

MAX_ROWS = 2**31 - 1


def call_id(raw: str) -> str | None:
    """The canonical form of a webhook call id (a UUID), None if `raw` is not one."""
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        return None


def display_url(url: str) -> str:
    """`url` without credentials, query or fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "?"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _when(w: WebhookCall) -> str:
    return f"sent {time_text(w.sent_at)}" if w.state == SENT else f"due {time_text(w.next_attempt_at)}"


def format_table(rows: Sequence[WebhookCall]) -> str:
    header = ("ID", "TICKET", "APP", "STATUS", "STATE", "ATTEMPTS", "DUE/SENT", "HTTP", "LAST ERROR")
    body = [
        (
            w.id,
            str(w.ticket_id),
            w.app,
            w.status,
            w.state,
            str(w.retry_count),
            _when(w),
            "" if w.response_status is None else str(w.response_status),
            one_line(w.last_error),
        )
        for w in rows
    ]
    return table(header, body)


def as_json(w: WebhookCall) -> dict[str, Any]:
    """Every field (the URL without query or credentials), times in ISO 8601."""
    out: dict[str, Any] = {}
    for name in WebhookCall.__dataclass_fields__:
        value = getattr(w, name)
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat()
        elif name == "url":
            value = display_url(value)
        elif name == "payload":
            value = dict(value)
        out[name] = value
    return out


_CALLS: Kind[WebhookCall, str] = Kind(
    one="webhook call",
    many="webhook calls",
    id_of=lambda w: w.id,
    status_of=lambda w: w.state,
    in_status="in state",
    as_json=as_json,
    format_table=format_table,
    retried="dead",
)


def _store(url: str) -> Any:
    from store.db import Database
    from store.webhooks import SqlWebhookCalls

    db = Database(url)
    return db, SqlWebhookCalls(db)


async def list_webhooks(settings: Settings, args: argparse.Namespace) -> int:
    """`outbox list --kind webhook`."""
    status = None if args.status == "all" else args.status
    if status is not None and status not in STATES:
        print(
            f"ticketbot: outbox list --kind webhook: a webhook call is {', '.join(STATES)} (not {status})",
            file=sys.stderr,
        )
        return 2
    db, store = _store(settings.database_url)
    try:
        rows: list[WebhookCall] = await store.list_calls(
            state=status, ticket_id=args.ticket, limit=args.limit
        )
    finally:
        await db.dispose()
    show(_CALLS, rows, args.json, args.ticket, status)
    return 0


async def retry_webhooks(settings: Settings, args: argparse.Namespace) -> int:
    """`outbox retry --kind webhook`: ids are webhook call ids (UUIDs), or --dead [--ticket N]."""
    raw_ids = [str(i) for i in args.ids]
    ids = [call_id(i) for i in raw_ids]
    bad = [raw for raw, parsed in zip(raw_ids, ids, strict=True) if parsed is None]
    if bad:
        print(
            f"ticketbot: outbox retry --kind webhook: {', '.join(bad)} is not a webhook call id (a UUID)",
            file=sys.stderr,
        )
        return 2
    wanted = [i for i in ids if i is not None]
    db, store = _store(settings.database_url)
    dead = partial(store.list_calls, state=DEAD, ticket_id=args.ticket, limit=MAX_ROWS)
    try:
        return await retry(
            _CALLS,
            wanted,
            dead=dead if args.dead else None,
            find=store.find,
            requeue=store.requeue,
            ticket=args.ticket,
        )
    finally:
        await db.dispose()
