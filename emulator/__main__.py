"""Run the platform emulators: `python -m emulator --port 8081 --corp-id ww1 --agent-id 1000002 --secret s`.

`--platform wecom` (the default) serves the WeCom API; `--platform dingtalk` the DingTalk one;
`--platform both` serves both on the same port (their paths do not overlap: WeCom's are under
/cgi-bin, DingTalk's under /v1.0, /topapi, /gettoken and /robot).

WeCom: point the bot's WeCom api_base at http://127.0.0.1:<port>. `--org org.json` loads
{"departments": [...], "users": [...]} as the directory.

DingTalk: point both the bot's DingTalk api_base and oapi_base at http://127.0.0.1:<port>.
`--app-key`, `--app-secret`, `--robot-code`, `--dingtalk-corp-id`, `--dingtalk-agent-id` name the
app; `--dingtalk-org org.json` loads {"departments": [...], "users": [...], "groups": [...]} in
DingTalk's field names (see emulator/dingtalk.py); `--public-url` is where the bot reaches the
emulator (the base of session webhook URLs; default http://<host>:<port>).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from emulator.dingtalk import DingTalkEmulator
from emulator.wecom import SystemClock, WeComEmulator


def merged_app(*apps: web.Application) -> web.Application:
    """One application serving the routes of several emulators (whose paths must not overlap)."""
    root = web.Application()
    for app in apps:
        for route in app.router.routes():
            info = route.resource.canonical if route.resource is not None else ""
            root.router.add_route(route.method, info, route.handler)
    return root


def _load(path: Path | None) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path else None


def build_app(args: argparse.Namespace) -> web.Application:
    apps: list[web.Application] = []
    if args.platform in ("wecom", "both"):
        wecom = WeComEmulator(
            corp_id=args.corp_id, apps={args.agent_id: args.secret}, clock=SystemClock(), org=_load(args.org)
        )
        apps.append(wecom.app())
    if args.platform in ("dingtalk", "both"):
        dingtalk = DingTalkEmulator(
            args.app_key,
            args.app_secret,
            args.robot_code,
            SystemClock(),
            org=_load(args.dingtalk_org),
            corp_id=args.dingtalk_corp_id,
            agent_id=args.dingtalk_agent_id,
            base_url=args.public_url or f"http://{args.host}:{args.port}",
        )
        apps.append(dingtalk.app())
    return apps[0] if len(apps) == 1 else merged_app(*apps)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emulator", description="local WeCom / DingTalk API emulator")
    p.add_argument("--platform", choices=["wecom", "dingtalk", "both"], default="wecom")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    wecom = p.add_argument_group("WeCom")
    wecom.add_argument("--corp-id", default="ww-emulated-corp")
    wecom.add_argument("--agent-id", type=int, default=1000002)
    wecom.add_argument("--secret", default="emulator-secret")
    wecom.add_argument("--org", type=Path, help="JSON file with departments and users")
    ding = p.add_argument_group("DingTalk")
    ding.add_argument("--app-key", default="ding-emulated-app-key")
    ding.add_argument("--app-secret", default="emulator-app-secret")
    ding.add_argument("--robot-code", default="ding-emulated-app-key")
    ding.add_argument("--dingtalk-corp-id", default="ding-emulated-corp")
    ding.add_argument("--dingtalk-agent-id", type=int, default=3000001)
    ding.add_argument("--dingtalk-org", type=Path, help="JSON file with departments, users and groups")
    ding.add_argument("--public-url", help="where the bot reaches the emulator (session webhook URLs)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    web.run_app(build_app(args), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
