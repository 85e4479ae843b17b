"""The `ticketbot` command line: serve, check, migrate, org sync, outbox, customers sync."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.customers_cli import add_customers_parser, run_customers
from bot.outbox_cli import add_outbox_parser, run_outbox
from config.errors import ConfigError
from config.settings import Settings, format_help, load_settings, redact_url

if TYPE_CHECKING:
    from config.secret_check import PlaceholderSecret

log = logging.getLogger("ticketbot")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ticketbot",
        description="Tickets and approvals from WeCom and DingTalk, on a loonflow-compatible engine.",
        epilog=format_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the HTTP server (migrates the database first)",
        description="Run the HTTP server. Applies database migrations at start-up.",
    )
    serve.add_argument("--host", help="address to listen on (TICKETBOT_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (TICKETBOT_PORT, default 8080)")
    serve.add_argument("--config", type=Path, help="config directory (TICKETBOT_CONFIG_DIR)")
    serve.add_argument("--database-url", help="SQLAlchemy async URL (TICKETBOT_DATABASE_URL)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run N worker processes on the port (PostgreSQL only; SQLite is single-process)",
    )
    serve.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by --workers for each worker
    demo = sub.add_parser(
        "demo",
        help="run ticketbot with the WeCom/DingTalk emulator and its web chat page (no account needed)",
        description="Run ticketbot and the platform emulator in one process: the emulator (WeCom, "
        "DingTalk and a web chat page) on --emulator-port, ticketbot on --port, the demo org and "
        "workflows from the config directory, on embedded SQLite unless --database-url says otherwise. "
        "Prints the URL of the chat page. Ctrl-C stops both.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address both listen on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8080, help="ticketbot's port (default 8080)")
    demo.add_argument("--emulator-port", type=int, default=8081, help="the emulator's port (default 8081)")
    demo.add_argument("--database-url", help="SQLAlchemy async URL (TICKETBOT_DATABASE_URL)")
    check = sub.add_parser(
        "check",
        help="validate a config directory and print a summary",
        description="Validate workflows, org and API apps; exit 0 when valid, 1 with "
        "every error (file, path inside it, what is wrong) when not.",
    )
    check.add_argument("--config", type=Path, help="config directory (TICKETBOT_CONFIG_DIR)")
    migrate = sub.add_parser(
        "migrate",
        help="apply database migrations",
        description="Apply every pending Alembic migration to the database.",
    )
    migrate.add_argument("--database-url", help="SQLAlchemy async URL (TICKETBOT_DATABASE_URL)")
    org = sub.add_parser(
        "org",
        help="the organisation directory (sync from WeCom or DingTalk)",
        description="Manage the organisation directory. config/org.yaml (source 'config') is the "
        "offline demo directory and is published by `serve`; `org sync` adds another source.",
    )
    org_sub = org.add_subparsers(dest="org_command", metavar="ORG_COMMAND")
    sync = org_sub.add_parser(
        "sync",
        help="fetch departments and members from WeCom or DingTalk and publish them",
        description="Fetch the departments and members the WeCom or DingTalk app can see and publish "
        "them as source 'wecom' or 'dingtalk' (the database is migrated first). Members who left the "
        "platform are deactivated, never deleted (unless they are still on the other platform); users "
        "from config/org.yaml (source 'config') are untouched. A member who is already a user of "
        "another source (same platform id, or same person key: TICKETBOT_ORG_PERSON_KEY, mobile or "
        "email) is merged into that user, so one person is one user on both platforms. "
        "--from wecom needs TICKETBOT_WECOM_CORP_ID and TICKETBOT_WECOM_SECRET (and "
        "TICKETBOT_WECOM_API_BASE to use another endpoint, e.g. the emulator); --from dingtalk needs "
        "TICKETBOT_DINGTALK_APP_KEY and TICKETBOT_DINGTALK_APP_SECRET (and TICKETBOT_DINGTALK_OAPI_BASE "
        "for another endpoint). A sync that would deactivate more than half of the platform's active "
        "users (with more than 4 of them) is refused and changes nothing, in case the platform "
        "answered only part of the directory; --force publishes it anyway. "
        "TICKETBOT_WECOM_ORG_SYNC_MINUTES=N / TICKETBOT_DINGTALK_ORG_SYNC_MINUTES=N make `serve` run "
        "this sync every N minutes.",
    )
    sync.add_argument(
        "--from",
        dest="source",
        required=True,
        choices=["wecom", "dingtalk"],
        help="where the directory comes from",
    )
    sync.add_argument("--dry-run", action="store_true", help="fetch and compare, write nothing")
    sync.add_argument(
        "--force",
        action="store_true",
        help="publish even when more than half of the platform's active users would be deactivated",
    )
    sync.add_argument("--database-url", help="SQLAlchemy async URL (TICKETBOT_DATABASE_URL)")
    add_outbox_parser(sub)
    add_customers_parser(sub)
    return p


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    for key in ("host", "port", "database_url"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    if getattr(args, "config", None) is not None:
        overrides["config_dir"] = args.config
    return load_settings(**overrides)


def _check(args: argparse.Namespace) -> int:
    from config.loader import check_config

    settings = _settings(args)
    ok, text = check_config(settings.config_dir)
    print(text, file=sys.stdout if ok else sys.stderr)
    if ok:
        for item in _placeholders(settings):
            print(f"warning: `serve` will refuse this: {item}", file=sys.stderr)
    return 0 if ok else 1


def _migrate(args: argparse.Namespace) -> int:
    from store.migrate import current_revision, upgrade

    settings = _settings(args)
    upgrade(settings.database_url)
    print(
        f"database {redact_url(settings.database_url)} is at revision {current_revision(settings.database_url)}"
    )
    return 0


def _org(args: argparse.Namespace) -> int:
    import asyncio

    from bot.org_sync import OrgSyncError, SyncReport, format_report

    if args.org_command is None:
        _parser().parse_args(["org", "--help"])
        return 2
    settings = _settings(args)
    refused: tuple[type[Exception], ...]
    if args.source == "dingtalk":
        from bot.dingtalk.client import DingTalkError
        from bot.dingtalk.org_sync import run_org_sync as run_dingtalk

        run, refused = run_dingtalk, (DingTalkError, OrgSyncError)
    else:
        from bot.wecom.client import WeComError
        from bot.wecom.org_sync import run_org_sync as run_wecom

        run, refused = run_wecom, (WeComError, OrgSyncError)
    try:
        result: tuple[SyncReport, str] = asyncio.run(run(settings, dry_run=args.dry_run, force=args.force))
    except refused as exc:
        print(f"ticketbot: org sync from {args.source} failed: {exc}", file=sys.stderr)
        return 1
    report, note = result
    if note:
        print(f"note: {note}")
    print(format_report(report))
    return 0


def _placeholders(settings: Settings) -> list[PlaceholderSecret]:
    from config.apps import load_apps
    from config.secret_check import placeholder_secrets

    return placeholder_secrets(settings, load_apps(settings.config_dir))


def _secrets_ok(settings: Settings) -> bool:
    """False (after saying why) when `serve` would run on demo or placeholder secrets and that is
    not explicitly allowed; allowed, each one is named in a warning."""
    from config.secret_check import ALLOW_VAR, refusal

    found = _placeholders(settings)
    if found and not settings.allow_placeholder_secrets:
        print(f"ticketbot: {refusal(found)}", file=sys.stderr)
        return False
    for item in found:
        log.warning("serving with a placeholder secret (%s=1): %s", ALLOW_VAR, item)
    return True


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import create_app

    settings = _settings(args)
    if args.worker_index is None and not _secrets_ok(settings):
        return 2
    if args.worker_index is None and args.workers != 1:
        from bot.workers import WorkersRefused, serve_workers

        try:
            return serve_workers(settings, args.workers, args.argv)
        except WorkersRefused as exc:
            print(f"ticketbot: {exc}", file=sys.stderr)
            return 2

    async def make() -> web.Application:
        return await create_app(settings, worker_index=args.worker_index)

    def announce(_: str) -> None:
        print(
            f"ticketbot serving on http://{settings.host}:{settings.port}  "
            f"(config {settings.config_dir}, database {redact_url(settings.database_url)}); Ctrl-C stops it",
            flush=True,
        )

    worker = args.worker_index is not None
    web.run_app(
        make(),
        host=settings.host,
        port=settings.port,
        print=None if worker else announce,
        access_log=None,
        reuse_port=worker or None,
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from bot.demo import serve_demo

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve_demo(
                host=args.host,
                port=args.port,
                emulator_port=args.emulator_port,
                database_url=args.database_url,
            )
        )
    print("ticketbot demo stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from bot.logs import setup_logging

    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        _parser().print_help()
        return 2
    try:
        settings_level = load_settings().log_level
    except ConfigError as exc:
        print(f"ticketbot: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings_level)
    try:
        return {
            "serve": _serve,
            "demo": _demo,
            "check": _check,
            "migrate": _migrate,
            "org": _org,
            "outbox": run_outbox,
            "customers": run_customers,
        }[args.command](args)
    except ConfigError as exc:
        print(f"ticketbot: configuration is not valid:\n{exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ticketbot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
