"""Run the WeCom API emulator: `python -m emulator --port 8081 --corp-id ww1 --agent-id 1000002 --secret s`.

Point the bot's WeCom api_base at http://127.0.0.1:<port>. `--org org.json` loads
{"departments": [...], "users": [...]} as the directory.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aiohttp import web

from emulator.wecom import SystemClock, WeComEmulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="local WeCom API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--corp-id", default="ww-emulated-corp")
    parser.add_argument("--agent-id", type=int, default=1000002)
    parser.add_argument("--secret", default="emulator-secret")
    parser.add_argument("--org", type=Path, help="JSON file with departments and users")
    args = parser.parse_args(argv)
    org = json.loads(args.org.read_text(encoding="utf-8")) if args.org else None
    emulator = WeComEmulator(
        corp_id=args.corp_id, apps={args.agent_id: args.secret}, clock=SystemClock(), org=org
    )
    web.run_app(emulator.app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
