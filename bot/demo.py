"""`ticketbot demo`: ticketbot and the platform emulator in one process, on embedded SQLite.

The emulator (WeCom and DingTalk, with its web chat page) listens on one port, ticketbot on
another; they talk to each other over HTTP exactly as the real platforms would: encrypted, signed
callbacks one way, API calls with access tokens the other. The demo org (config/org.yaml) is
loaded into both emulators' directories, so every demo employee can chat on either platform.

The credentials below are fixed demo values known to both sides; they protect nothing. This is the
only module of the product that imports the emulator (an import-linter contract says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.app import create_app
from config import placeholders
from config.org import load_org
from config.settings import Settings, load_settings
from core.org import Org
from emulator.chat import DingTalkBot, ToolbarPage, WeComBot
from emulator.dingtalk import DingTalkEmulator
from emulator.stack import Stack, build_stack
from emulator.wecom import SystemClock, WeComEmulator

# fixed demo values shared with the emulator (config/placeholders.py: `serve` refuses them)
WECOM_CORP_ID = placeholders.DEMO_WECOM_CORP_ID
WECOM_AGENT_ID = 1000002
WECOM_SECRET = placeholders.DEMO_WECOM_SECRET
WECOM_TOKEN = placeholders.DEMO_WECOM_TOKEN
WECOM_AES_KEY = placeholders.DEMO_WECOM_AES_KEY
DINGTALK_APP_KEY = placeholders.DEMO_DINGTALK_APP_KEY
DINGTALK_APP_SECRET = placeholders.DEMO_DINGTALK_APP_SECRET
DINGTALK_CORP_ID = "ding-demo-corp"
DINGTALK_TEMPLATE_ID = "ticketbot-demo.schema"
# the demo's links survive a restart (var/demo.db does); set TICKETBOT_LINK_SECRET for your own
DEMO_LINK_SECRET = placeholders.DEMO_LINK_SECRET
# the demo's WeCom customers (客户): loaded into the emulator, announced to ticketbot at start
DEMO_CUSTOMERS: tuple[dict[str, Any], ...] = (
    {
        "external_userid": "wmDemoDaDaGuai00000000000000001",
        "name": "大大怪",
        "type": 1,
        "gender": 1,
        "follow_user": [
            {"userid": "LiuYang", "remark": "大大怪（老客户）", "createtime": 1793491200},
            {"userid": "XuLi", "remark": "大大怪", "description": "售后对接", "createtime": 1793577600},
        ],
    },
    {
        "external_userid": "wmDemoXiaoXiaoGuai000000000002",
        "name": "小小怪",
        "type": 1,
        "gender": 1,
        "follow_user": [{"userid": "XuLi", "remark": "小小怪", "createtime": 1793664000}],
    },
    {
        "external_userid": "woDemoXingXingKeJi000000000003",
        "name": "王经理",
        "type": 2,
        "gender": 2,
        "corp_name": "星星科技",
        "corp_full_name": "星星科技有限公司",
        "position": "采购经理",
        "follow_user": [{"userid": "WuJuan", "remark": "星星科技 王经理", "createtime": 1793750400}],
    },
)


@dataclass(frozen=True, slots=True)
class DemoUrls:
    chat: str  # the emulator's web chat page: what a person opens
    ticketbot: str  # ticketbot itself (API, ticket pages, callbacks)


def emulator_orgs(org: Org) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """The demo directory as the WeCom and the DingTalk emulators hold it (their own field names)."""
    wecom_depts = [
        {"id": d.id, "name": d.name, "parentid": d.parent_id, "order": d.id}
        for d in sorted(org.departments.values(), key=lambda d: d.id)
    ]
    ding_depts = [
        {"dept_id": d.id, "name": d.name, "parent_id": d.parent_id or 1}
        if d.parent_id
        else {"dept_id": d.id, "name": d.name}
        for d in sorted(org.departments.values(), key=lambda d: d.id)
    ]
    wecom_users: list[dict[str, Any]] = []
    ding_users: list[dict[str, Any]] = []
    for user in sorted(org.users.values(), key=lambda u: u.username):
        if not user.is_active:
            continue
        name = user.alias or user.username
        depts = list(user.dept_ids) or [1]
        if user.wecom_userid:
            wecom_users.append(
                {
                    "userid": user.wecom_userid,
                    "name": name,
                    "department": depts,
                    "mobile": user.phone,
                    "email": user.email,
                }
            )
        if user.dingtalk_staff_id:
            ding_users.append(
                {
                    "userid": user.dingtalk_staff_id,
                    "name": name,
                    "dept_id_list": depts,
                    "mobile": user.phone,
                    "email": user.email,
                }
            )
    return (
        {"departments": wecom_depts, "users": wecom_users},
        {"departments": ding_depts, "users": ding_users},
    )


def demo_env(base: Mapping[str, str], *, ticketbot_url: str, emulator_url: str) -> dict[str, str]:
    """`base` (the environment) with the demo's platform settings: both platforms on the emulator."""
    env = {k: v for k, v in base.items() if not k.startswith(("TICKETBOT_WECOM_", "TICKETBOT_DINGTALK_"))}
    env.setdefault("TICKETBOT_LINK_SECRET", DEMO_LINK_SECRET)
    env.update(
        {
            "TICKETBOT_PUBLIC_URL": ticketbot_url,
            "TICKETBOT_FRAME_ANCESTORS": " ".join(_origins(emulator_url)),
            "TICKETBOT_WECOM_CORP_ID": WECOM_CORP_ID,
            "TICKETBOT_WECOM_AGENT_ID": str(WECOM_AGENT_ID),
            "TICKETBOT_WECOM_SECRET": WECOM_SECRET,
            "TICKETBOT_WECOM_TOKEN": WECOM_TOKEN,
            "TICKETBOT_WECOM_AES_KEY": WECOM_AES_KEY,
            "TICKETBOT_WECOM_API_BASE": emulator_url,
            "TICKETBOT_WECOM_OAUTH_BASE": emulator_url,
            "TICKETBOT_WECOM_JSSDK_URLS": f"{emulator_url}/wwopen/js/jwxwork.js",
            "TICKETBOT_CHAT_ARCHIVE_URL": f"{emulator_url}/_emulator/archive",
            "TICKETBOT_DINGTALK_APP_KEY": DINGTALK_APP_KEY,
            "TICKETBOT_DINGTALK_APP_SECRET": DINGTALK_APP_SECRET,
            "TICKETBOT_DINGTALK_ROBOT_CODE": DINGTALK_APP_KEY,
            "TICKETBOT_DINGTALK_CARD_TEMPLATE_ID": DINGTALK_TEMPLATE_ID,
            "TICKETBOT_DINGTALK_CORP_ID": DINGTALK_CORP_ID,
            "TICKETBOT_DINGTALK_API_BASE": emulator_url,
            "TICKETBOT_DINGTALK_OAPI_BASE": emulator_url,
        }
    )
    return env


def _origins(url: str) -> list[str]:
    """`url`, and its localhost twin when it is on 127.0.0.1 (people type either)."""
    out = [url]
    if "//127.0.0.1:" in url:
        out.append(url.replace("//127.0.0.1:", "//localhost:", 1))
    return out


@dataclass(slots=True)
class Demo:
    """A running demo: both servers, and the pieces tests look at."""

    urls: DemoUrls
    settings: Settings
    app: web.Application
    wecom: WeComEmulator
    dingtalk: DingTalkEmulator
    emulator: Stack


@asynccontextmanager
async def running_demo(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    emulator_port: int = 8081,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Demo]:
    """Start the emulator, then ticketbot (it registers its DingTalk card callback with the
    emulator at start-up); stop both, ticketbot first, on exit."""
    ticketbot_url = f"http://{host}:{port}"
    emulator_url = f"http://{host}:{emulator_port}"
    settings = load_settings(
        env=demo_env(
            os.environ if env is None else env, ticketbot_url=ticketbot_url, emulator_url=emulator_url
        ),
        host=host,
        port=port,
        database_url=database_url,
    )
    wecom_org, ding_org = emulator_orgs(load_org(settings.config_dir))
    clock = SystemClock()
    wecom = WeComEmulator(
        corp_id=WECOM_CORP_ID, apps={WECOM_AGENT_ID: WECOM_SECRET}, clock=clock, org=wecom_org
    )
    wecom.contacts.load(DEMO_CUSTOMERS)
    dingtalk = DingTalkEmulator(
        DINGTALK_APP_KEY,
        DINGTALK_APP_SECRET,
        DINGTALK_APP_KEY,
        clock,
        org=ding_org,
        corp_id=DINGTALK_CORP_ID,
        base_url=emulator_url,
    )
    stack = build_stack(
        wecom=wecom,
        dingtalk=dingtalk,
        wecom_bot=WeComBot(f"{ticketbot_url}/wecom/callback", WECOM_TOKEN, WECOM_AES_KEY),
        dingtalk_bot=DingTalkBot(f"{ticketbot_url}/dingtalk/robot"),
        toolbar=(ToolbarPage("工单", f"{ticketbot_url}/sidebar/workorder"),),  # the work-order sidebar
    )
    emulator_runner = web.AppRunner(stack.app, access_log=None, shutdown_timeout=2.0)
    await emulator_runner.setup()
    bot_runner: web.AppRunner | None = None
    try:
        await web.TCPSite(emulator_runner, host, emulator_port).start()
        app = await create_app(settings)
        bot_runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await bot_runner.setup()
        await web.TCPSite(bot_runner, host, port).start()
        await wecom.contacts.announce()  # WeCom's add_external_contact callbacks: ticketbot keeps them
        yield Demo(DemoUrls(f"{emulator_url}/", ticketbot_url), settings, app, wecom, dingtalk, stack)
    finally:
        if bot_runner is not None:
            await bot_runner.cleanup()
        await emulator_runner.cleanup()


def banner(demo: Demo) -> str:
    return (
        "ticketbot demo is running (embedded SQLite; Ctrl-C stops it)\n"
        f"  open the chat:   {demo.urls.chat}\n"
        "                  pick an employee and WeCom or DingTalk; send 发起 请假申请 for a leave request,\n"
        "                  then open another tab as 王强 (WangQiang) to approve it from the card;\n"
        "                  customer service: as 徐丽 (XuLi) on WeCom, 客户 -> 大大怪, then 工单 opens the sidebar\n"
        f"  ticketbot:       {demo.urls.ticketbot}  (APIs /api/v1.0 and /open-api/workorder, ticket pages /tickets/<id>)\n"
        f"  database:        {demo.settings.database_url.split('///', 1)[-1]}"
    )


async def serve_demo(*, host: str, port: int, emulator_port: int, database_url: str | None) -> None:
    """Run the demo until Ctrl-C (the task is cancelled) or SIGTERM; both stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on some platforms
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with running_demo(
        host=host, port=port, emulator_port=emulator_port, database_url=database_url
    ) as demo:
        print(banner(demo), flush=True)
        await stop.wait()
