"""`ticketbot customers sync [--dry-run] [--database-url URL]`: reconcile every customer (WeCom
external contact) with WeCom once, as the scheduled job does (bot/wecom/customer_reconcile.py), and
print the report.

Exit 0 when the run was complete; 1, with the reason on stderr, when WeCom is not configured,
refused the run, refused part of it (a member's list or a customer's read failed: the report says
which, and nothing was deleted for a failed list), or the safety valve held (not for a dry run,
where it is reported). WeCom's adapter is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from config.settings import load_settings


def add_customers_parser(sub: Any) -> None:
    """Register `customers sync` on the top-level subparsers `sub`."""
    customers = sub.add_parser(
        "customers",
        help="the customers (WeCom external contacts): reconcile them with WeCom",
        description="Customers (客户, WeCom external contacts) are kept current from WeCom's "
        "change_external_contact callbacks; `customers sync` corrects what a missed callback left.",
    )
    customers_sub = customers.add_subparsers(dest="customers_command", metavar="CUSTOMERS_COMMAND")
    sync = customers_sub.add_parser(
        "sync",
        help="reconcile every customer with WeCom once and print the report",
        description="List every member's customers (externalcontact/list for each member of "
        "externalcontact/get_follow_user_list, or of the directory's WeCom users when the app may not "
        "read that list), read each customer again (externalcontact/get) and store it as an event "
        "would, and mark deleted the stored customers nobody lists any more once WeCom confirms it. "
        "Nothing is deleted when a list call fails, nor when more than half of the stored customers "
        "(with more than 4 of them) are on no list. Needs TICKETBOT_WECOM_CORP_ID and "
        "TICKETBOT_WECOM_SECRET (one that may use 客户联系; TICKETBOT_WECOM_API_BASE for another "
        "endpoint, e.g. the emulator). TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES=N makes `serve` run it "
        "every N minutes.",
    )
    sync.add_argument("--dry-run", action="store_true", help="read WeCom and compare, write nothing")
    sync.add_argument("--database-url", help="SQLAlchemy async URL (TICKETBOT_DATABASE_URL)")


def run_customers(args: argparse.Namespace) -> int:
    """The `customers` command: exit status (see the module docstring)."""
    if getattr(args, "customers_command", None) is None:
        print("usage: ticketbot customers sync [--dry-run] [--database-url URL]", file=sys.stderr)
        return 2
    from bot.wecom.client import WeComError
    from bot.wecom.customer_reconcile import CustomerSyncError, format_report, run_customer_sync

    overrides = {"database_url": args.database_url} if args.database_url else {}
    settings = load_settings(**overrides)
    try:
        report, note = asyncio.run(run_customer_sync(settings, dry_run=args.dry_run))
    except (CustomerSyncError, WeComError) as exc:
        print(f"ticketbot: customer sync failed: {exc}", file=sys.stderr)
        return 1
    if note:
        print(f"note: {note}")
    print(format_report(report))
    if report.failed_users or report.failed:
        print(
            f"ticketbot: customer sync incomplete: WeCom refused {len(report.failed_users)} list call(s) "
            f"and {report.failed} customer read(s): {report.first_error}",
            file=sys.stderr,
        )
        return 1
    if report.refused and not report.dry_run:
        print(
            f"ticketbot: customer sync refused to delete: {report.refused} of the {report.stored} stored "
            "customers are on no member's list",
            file=sys.stderr,
        )
        return 1
    return 0
