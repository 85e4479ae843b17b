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
import json
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from config.settings import Settings
from core.webhook_calls import DEAD, SENT, STATES, WebhookCall

ERROR_WIDTH = 60
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


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _when(w: WebhookCall) -> str:
    return f"sent {_time(w.sent_at)}" if w.state == SENT else f"due {_time(w.next_attempt_at)}"


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
            _one_line(w.last_error, ERROR_WIDTH),
        )
        for w in rows
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *body]
    )


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
    if args.json:
        print(json.dumps([as_json(w) for w in rows], ensure_ascii=False, indent=2))
    elif not rows:
        print(
            "no webhook calls"
            + (f" of ticket {args.ticket}" if args.ticket else "")
            + (f" in state {status}" if status else "")
        )
    else:
        print(format_table(rows))
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
    try:
        if args.dead:
            found: list[WebhookCall] = await store.list_calls(
                state=DEAD, ticket_id=args.ticket, limit=MAX_ROWS
            )
            if not found:
                print("no dead webhook calls" + (f" of ticket {args.ticket}" if args.ticket else ""))
                return 0
        else:
            found = await store.find(wanted)
            unknown = sorted(set(wanted) - {w.id for w in found})
            if unknown:
                print(
                    f"ticketbot: no webhook call {', '.join(unknown)}; nothing was changed",
                    file=sys.stderr,
                )
                return 1
        done: list[str] = await store.requeue([w.id for w in found], datetime.now(UTC))
    finally:
        await db.dispose()
    if done:
        print(
            f"requeued {len(done)} webhook call{'' if len(done) == 1 else 's'} (pending, due now): {', '.join(done)}"
        )
    left = sorted((w for w in found if w.id not in done), key=lambda w: w.id)
    if left:
        print("left alone (only dead ones are retried): " + ", ".join(f"{w.id} ({w.state})" for w in left))
    return 0
