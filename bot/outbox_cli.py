"""`ticketbot outbox list | retry | replay`: the operations side of the outbox.

- `list` shows deliveries (one message to one person on one platform) newest first, as a table
  or as JSON;
- `retry` puts "dead" or "cancelled" deliveries back in the queue (due now, attempts reset); the
  running service sends them on its next pass;
- `replay` plans fresh cards for a ticket's current handlers (bot.notify.replay), e.g. after an
  outage or when a platform message was deleted; the running service sends them.

With `--kind webhook`, `list` and `retry` work on the work_order_change webhook calls instead
(bot.webhook_cli; their ids are UUIDs). Hook calls are not listed here yet.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bot.listing import Kind, one_line, retry, show, table, time_text
from bot.notify.plan import AddressOf
from bot.notify.ports import Delivery, OutboxEvent
from bot.webhook_cli import call_id, list_webhooks, retry_webhooks
from config.settings import Settings, load_settings
from core.org import User
from store.errors import StoreError

STATUSES = ("pending", "sent", "dead", "cancelled", "all")
KINDS = ("delivery", "webhook")
MAX_ID = 2**63 - 1
MAX_LIMIT = 10_000


class _HELP(argparse.HelpFormatter):
    """Wraps one-line texts (descriptions) like argparse does; keeps multi-line ones (the examples)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _positive(name: str, maximum: int = MAX_ID) -> Any:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {raw!r}") from None
        if not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{name} must be within 1..{maximum}, got {value}")
        return value

    parse.__name__ = name  # argparse names the type in its errors
    return parse


def _id(raw: str) -> int | str:
    """A delivery id (a whole number) or a webhook call id (a UUID, for --kind webhook)."""
    if not raw.strip().lstrip("+-").isdigit():
        found = call_id(raw)
        if found is not None:
            return found
        raise argparse.ArgumentTypeError(
            f"id must be a whole number (a delivery) or a UUID (a webhook call), got {raw!r}"
        )
    parsed: int = _positive("id")(raw)
    return parsed


_id.__name__ = "id"


def add_outbox_parser(sub: Any) -> None:
    """Register `outbox list | retry | replay` on the top-level subparsers `sub`."""
    outbox = sub.add_parser(
        "outbox",
        help="see, retry and replay the messages sent to people (deliveries)",
        formatter_class=_HELP,
        description="The outbox: every card, card update and notice sent to one person on one "
        "platform is a delivery, sent with backoff and ended 'dead' after repeated failures. "
        "These commands read and change the database directly; a running `ticketbot serve` "
        "sends what they queue within a few seconds.",
        epilog="examples:\n"
        "  ticketbot outbox list --status dead\n"
        "  ticketbot outbox retry --dead\n"
        "  ticketbot outbox replay --ticket 42\n"
        "  ticketbot outbox list --kind webhook --status dead   # work_order_change webhooks",
    )
    cmds = outbox.add_subparsers(dest="outbox_command", metavar="OUTBOX_COMMAND")
    db_help = "SQLAlchemy async URL (TICKETBOT_DATABASE_URL)"

    ls = cmds.add_parser(
        "list",
        help="list deliveries, newest first",
        formatter_class=_HELP,
        description="List deliveries newest first: id, ticket, platform, recipient, kind (pending "
        "card, urge, cc, notice), status, failed attempts, when it is due (pending, dead, "
        "cancelled) or was sent, and the last error.",
        epilog="examples:\n"
        "  ticketbot outbox list                      # the 50 newest\n"
        "  ticketbot outbox list --status dead        # what was given up\n"
        "  ticketbot outbox list --ticket 42 --status all --limit 500\n"
        "  ticketbot outbox list --status pending --json | jq '.[].id'\n"
        "  ticketbot outbox list --kind webhook --ticket 42   # its work_order_change webhooks",
    )
    ls.add_argument(
        "--kind",
        choices=KINDS,
        default="delivery",
        help="delivery (messages to people, the default) or webhook (work_order_change webhook calls: "
        "id, ticket, app, status, state pending/sent/dead, attempts, due or sent, last HTTP status and error)",
    )
    ls.add_argument("--status", choices=STATUSES, default="all", help="only this status (default all)")
    ls.add_argument("--ticket", type=_positive("ticket"), metavar="N", help="only ticket N's deliveries")
    ls.add_argument(
        "--limit",
        type=_positive("limit", MAX_LIMIT),
        default=50,
        metavar="N",
        help=f"at most N rows (default 50, at most {MAX_LIMIT})",
    )
    ls.add_argument("--json", action="store_true", help="print JSON (every field, times in ISO 8601 UTC)")
    ls.add_argument("--database-url", help=db_help)

    retry = cmds.add_parser(
        "retry",
        help="send dead or cancelled deliveries again",
        formatter_class=_HELP,
        description="Put dead or cancelled deliveries back in the queue: status pending, due now, "
        "failed attempts reset to 0. Deliveries in another status are left alone (and named). An "
        "unknown id is an error and nothing is changed. A card for a ticket that has moved on since "
        "is cancelled again when its turn comes, not sent.",
        epilog="examples:\n"
        "  ticketbot outbox retry 17 18\n"
        "  ticketbot outbox retry --dead              # every dead delivery\n"
        "  ticketbot outbox retry --dead --ticket 42\n"
        "  ticketbot outbox retry --kind webhook --dead   # every dead webhook call\n"
        "  ticketbot outbox retry --kind webhook 0b7e2c1a-5d7f-4f57-9a53-3c1d2e4f5a6b",
    )
    retry.add_argument(
        "ids", nargs="*", type=_id, metavar="ID", help="delivery ids (webhook call UUIDs with --kind webhook)"
    )
    retry.add_argument(
        "--kind",
        choices=KINDS,
        default="delivery",
        help="delivery (the default) or webhook: put dead work_order_change webhook calls back in the "
        "queue (pending, due now, retry_count 0), POSTed to the app's webhook_url of the moment",
    )
    retry.add_argument("--dead", action="store_true", help="every dead delivery (of --ticket)")
    retry.add_argument("--ticket", type=_positive("ticket"), metavar="N", help="with --dead: only ticket N")
    retry.add_argument("--database-url", help=db_help)

    rp = cmds.add_parser(
        "replay",
        help="send a ticket's current cards again",
        formatter_class=_HELP,
        description="Plan a fresh card for every current handler of the ticket who has a one-click "
        "decision, on every enabled platform where they have an address, even if cards were sent "
        "before (after an outage, or when a platform message was deleted). A card already queued "
        "and not sent yet is not doubled. Exits 1, changing nothing, when there is nothing to "
        "replay (the ticket ended, nobody can be reached, ...). Loads the config like `serve`.",
        epilog="examples:\n  ticketbot outbox replay --ticket 42",
    )
    rp.add_argument("--ticket", type=_positive("ticket"), metavar="N", required=True, help="the ticket")
    rp.add_argument("--config", type=Path, help="config directory (TICKETBOT_CONFIG_DIR)")
    rp.add_argument("--database-url", help=db_help)


# ------------------------------------------------------------------------------------ output


def _when(d: Delivery) -> str:
    if d.status == "sent":
        closed = f", closed {time_text(d.closed_at)}" if d.closed_at is not None else ""
        return f"sent {time_text(d.sent_at)}{closed}"
    return f"due {time_text(d.due_at)}"


def format_table(rows: Sequence[Delivery]) -> str:
    header = ("ID", "TICKET", "PLATFORM", "RECIPIENT", "KIND", "STATUS", "ATTEMPTS", "DUE/SENT", "LAST ERROR")
    body = [
        (
            str(d.id),
            str(d.ticket_id),
            d.platform,
            d.recipient,
            d.kind,
            d.status,
            str(d.attempts),
            _when(d),
            one_line(d.last_error),
        )
        for d in rows
    ]
    return table(header, body)


def as_json(d: Delivery) -> dict[str, Any]:
    """Every field but the single-use response_code, times in ISO 8601."""
    out: dict[str, Any] = {}
    for name in Delivery.__dataclass_fields__:
        if name == "response_code":
            continue
        value = getattr(d, name)
        out[name] = value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value
    return out


_DELIVERIES: Kind[Delivery, int] = Kind(
    one="delivery",
    many="deliveries",
    id_of=lambda d: d.id,
    status_of=lambda d: d.status,
    in_status="with status",
    as_json=as_json,
    format_table=format_table,
    retried="dead or cancelled",
)


# ------------------------------------------------------------------------------------ commands


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "database_url", None) is not None:
        overrides["database_url"] = args.database_url
    if getattr(args, "config", None) is not None:
        overrides["config_dir"] = args.config
    return load_settings(**overrides)


def _store(url: str) -> Any:
    from store.db import Database
    from store.deliveries import SqlDeliveries

    db = Database(url)
    return db, SqlDeliveries(db, delivery_type=Delivery, event_type=OutboxEvent)


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    if args.kind == "webhook":
        return await list_webhooks(settings, args)
    db, store = _store(settings.database_url)
    try:
        status = None if args.status == "all" else args.status
        rows: list[Delivery] = await store.list_deliveries(
            status=status, ticket_id=args.ticket, limit=args.limit
        )
    finally:
        await db.dispose()
    show(_DELIVERIES, rows, args.json, args.ticket, status)
    return 0


async def _retry(settings: Settings, args: argparse.Namespace) -> int:
    if bool(args.ids) == bool(args.dead):
        print("ticketbot: outbox retry needs delivery ids or --dead (not both)", file=sys.stderr)
        return 2
    if args.ticket is not None and not args.dead:
        print("ticketbot: outbox retry: --ticket goes with --dead", file=sys.stderr)
        return 2
    if args.kind == "webhook":
        return await retry_webhooks(settings, args)
    uuids = [i for i in args.ids if isinstance(i, str)]
    if uuids:
        print(
            f"ticketbot: outbox retry: {', '.join(uuids)} is a webhook call id; add --kind webhook",
            file=sys.stderr,
        )
        return 2
    db, store = _store(settings.database_url)
    dead = partial(store.list_deliveries, status="dead", ticket_id=args.ticket, limit=MAX_ID)
    try:
        return await retry(
            _DELIVERIES,
            args.ids,
            dead=dead if args.dead else None,
            find=store.find,
            requeue=store.requeue,
            ticket=args.ticket,
        )
    finally:
        await db.dispose()


def _platforms(settings: Settings) -> dict[str, AddressOf]:
    """The enabled platforms (as `serve` enables their senders) and a person's address on each."""
    out: dict[str, AddressOf] = {}
    if settings.wecom_enabled and settings.wecom_secret and settings.wecom_agent_id is not None:

        def wecom(user: User) -> str:
            return user.wecom_userid or ""

        out["wecom"] = wecom
    if settings.dingtalk_enabled:

        def dingtalk(user: User) -> str:
            return user.dingtalk_staff_id or ""

        out["dingtalk"] = dingtalk
    return out


async def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_runtime
    from bot.notify.replay import replay
    from store.deliveries import SqlDeliveries
    from store.queries import SqlTicketQueries

    runtime = await build_runtime(settings)
    try:
        ticket = await SqlTicketQueries(runtime.db).get_ticket(args.ticket)
        if ticket is None or ticket.is_deleted:
            print(f"ticketbot: ticket {args.ticket} does not exist; nothing was changed", file=sys.stderr)
            return 1
        wf = runtime.catalog.get(ticket.workflow_id, ticket.workflow_version) or runtime.catalog.get(
            ticket.workflow_id
        )
        if wf is None:
            print(
                f"ticketbot: the workflow {ticket.workflow_id} of ticket {ticket.id} is not configured; "
                "nothing was changed",
                file=sys.stderr,
            )
            return 1
        store = SqlDeliveries(runtime.db, delivery_type=Delivery, event_type=OutboxEvent)
        now = datetime.now(UTC)
        org = await runtime.directory.org()
        token = f"{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
        planned = replay(ticket, wf, org, await store.open_for_ticket(ticket.id), _platforms(settings), token)
        ids = await store.commit_plan([], planned.new, [], [], now) if planned.new else []
        made: list[Delivery] = await store.find(ids)
    finally:
        await runtime.db.dispose()
    for note in planned.notes:
        print(f"note: {note}", file=sys.stderr if not made else sys.stdout)
    if not made:
        print(f"ticketbot: nothing to replay for ticket {ticket.id}; nothing was changed", file=sys.stderr)
        return 1
    print(f"replayed ticket {ticket.id}: {len(made)} fresh card{'s' if len(made) != 1 else ''} queued")
    print(format_table(made))
    return 0


def run_outbox(args: argparse.Namespace) -> int:
    """`ticketbot outbox ...`; 0 done, 1 refused or failed (the message says why), 2 bad usage."""
    command = {"list": _list, "retry": _retry, "replay": _replay}.get(args.outbox_command or "")
    if command is None:
        print(
            "ticketbot: outbox needs a command: list, retry or replay (see ticketbot outbox --help)",
            file=sys.stderr,
        )
        return 2
    settings = _settings(args)
    try:
        return asyncio.run(command(settings, args))
    except StoreError as exc:
        print(f"ticketbot: outbox {args.outbox_command} failed: {exc}", file=sys.stderr)
        return 1
