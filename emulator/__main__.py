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

Web chat page: with `--bot-url http://127.0.0.1:8080` (where ticketbot listens) the emulator also
serves its chat page at http://<host>:<port>/ : pick an employee of the directory and a platform,
chat with the bot and click its cards (emulator/chat). WeCom messages go to <bot-url>/wecom/callback,
encrypted with `--wecom-token` and `--wecom-aes-key` (the bot's TICKETBOT_WECOM_TOKEN and _AES_KEY);
DingTalk messages to <bot-url>/dingtalk/robot, signed with `--app-secret`. On WeCom, a member's
customer chats offer the chat toolbar page <bot-url>/sidebar/workorder (ticketbot's work-order sidebar).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from emulator.chat import DingTalkBot, WeComBot
from emulator.chat.customers import ToolbarPage
from emulator.dingtalk import DingTalkEmulator
from emulator.stack import build_stack
from emulator.wecom import SystemClock, WeComEmulator


def _load(path: Path | None) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path else None


def build_app(args: argparse.Namespace) -> web.Application:
    wecom: WeComEmulator | None = None
    dingtalk: DingTalkEmulator | None = None
    if args.platform in ("wecom", "both"):
        wecom = WeComEmulator(
            corp_id=args.corp_id, apps={args.agent_id: args.secret}, clock=SystemClock(), org=_load(args.org)
        )
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
    bot = args.bot_url.rstrip("/") if args.bot_url else ""
    return build_stack(
        wecom=wecom,
        dingtalk=dingtalk,
        wecom_bot=WeComBot(f"{bot}/wecom/callback", args.wecom_token, args.wecom_aes_key)
        if bot and wecom
        else None,
        dingtalk_bot=DingTalkBot(f"{bot}/dingtalk/robot") if bot and dingtalk else None,
        toolbar=(ToolbarPage("工单", f"{bot}/sidebar/workorder"),) if bot and wecom else (),
    ).app


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
    chat = p.add_argument_group("web chat page (served at / when --bot-url is given)")
    chat.add_argument("--bot-url", help="where ticketbot listens, e.g. http://127.0.0.1:8080")
    chat.add_argument("--wecom-token", default="", help="the bot's WeCom callback token")
    chat.add_argument("--wecom-aes-key", default="", help="the bot's WeCom EncodingAESKey (43 characters)")
    return p


def main(argv: list[str] | None = None) -> None:
    p = parser()
    args = p.parse_args(argv)
    if args.bot_url and args.platform in ("wecom", "both") and not (args.wecom_token and args.wecom_aes_key):
        p.error(
            "--bot-url with WeCom needs --wecom-token and --wecom-aes-key (the bot's TICKETBOT_WECOM_TOKEN and _AES_KEY)"
        )
    web.run_app(build_app(args), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
