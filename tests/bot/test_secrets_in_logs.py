"""Nothing secret reaches the logs: the whole demo (both platforms, a leave request approved from
its card, the loonflow and work-order APIs with good and bad signatures) runs with every logger
at DEBUG, and no captured record (message, arguments, extras or traceback) carries a platform
secret, callback token, AES key, API token, link secret or any access token the platforms issued.
No answer the run got (API output, the chat page's) and nothing sent to the platforms (cards,
texts, card updates, work notices) carries one either."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import aiohttp
import pytest

from bot.demo import (
    DEMO_LINK_SECRET,
    DINGTALK_APP_SECRET,
    WECOM_AES_KEY,
    WECOM_SECRET,
    WECOM_TOKEN,
    Demo,
)
from tests.bot.demo_harness import settle

LEAVE = "发起 请假申请 start_date=2026-12-01 end_date=2026-12-02 days=2 reason=家里有事 proxy=zhaolei"
APP_TOKEN = "demo-token"  # the shipped demo app's token (config/apps.yaml)


def _headers(token: str, username: str = "liuyang") -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "appname": "demo",
        "timestamp": ts,
        "signature": hashlib.md5((ts + token).encode()).hexdigest(),  # noqa: S324 - loonflow's scheme
        "username": username,
    }


def _everything(record: logging.LogRecord) -> str:
    """The record as any handler could render it: message, arguments, extras and traceback."""
    parts = [record.getMessage(), repr(record.args)]
    parts += [f"{k}={v!r}" for k, v in vars(record).items() if k not in ("msg", "args")]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


async def test_a_whole_demo_run_logs_no_secret(demo: Demo, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []  # every answer the run got: API output and the chat page's
    chat = demo.urls.chat
    api = demo.urls.ticketbot
    async with aiohttp.ClientSession() as session:
        for platform, userid in (("wecom", "LiuYang"), ("dingtalk", "staff0005")):
            async with session.post(
                f"{chat}_chat/send", json={"platform": platform, "userid": userid, "text": LEAVE}
            ) as resp:
                bodies.append(await resp.text())
                assert resp.status == 200
        await settle(demo)
        async with session.get(
            f"{chat}_chat/timeline", params={"platform": "wecom", "userid": "WangQiang"}
        ) as resp:
            bodies.append(await resp.text())
            entries: list[Any] = (await resp.json())["entries"]
        card = next(e for e in entries if e["kind"] == "card")
        key = next(b["key"] for b in card["card"]["buttons"] if b["text"] == "同意")
        async with session.post(
            f"{chat}_chat/click",
            json={"platform": "wecom", "userid": "WangQiang", "card_id": card["card_id"], "key": key},
        ) as resp:
            bodies.append(await resp.text())
            assert resp.status == 200
        await settle(demo)
        async with session.get(f"{api}/api/v1.0/tickets", headers=_headers(APP_TOKEN)) as resp:
            bodies.append(await resp.text())
            assert resp.status == 200
        async with session.get(f"{api}/open-api/workorder/list", headers=_headers(APP_TOKEN)) as resp:
            bodies.append(await resp.text())
            assert resp.status == 200
        for bad in ("wrong-token", APP_TOKEN + "x"):  # refusals are logged: they must not echo secrets
            async with session.get(f"{api}/api/v1.0/tickets", headers=_headers(bad)) as resp:
                bodies.append(await resp.text())
                assert resp.status in (200, 401)
            async with session.get(f"{api}/open-api/workorder/list", headers=_headers(bad)) as resp:
                bodies.append(await resp.text())
                assert resp.status == 401
    issued = demo.wecom.issued_tokens()
    assert issued, "the run used WeCom's API"
    secrets = {
        "WeCom corp secret": WECOM_SECRET,
        "WeCom callback token": WECOM_TOKEN,
        "WeCom AES key": WECOM_AES_KEY,
        "DingTalk app secret": DINGTALK_APP_SECRET,
        "ticket-page link secret": DEMO_LINK_SECRET,
        "API app token": APP_TOKEN,
        **{f"WeCom access token {i}": t for i, t in enumerate(issued)},
    }
    loggers = {record.name for record in caplog.records}
    # the run reached the places a secret could leak from: auth refusals, callbacks, the engine
    assert {"ticketbot.api.auth", "ticketbot.api.workorder", "ticketbot.engine"} <= loggers, loggers
    assert any(name.startswith("ticketbot.wecom") for name in loggers), loggers
    assert any(name.startswith("ticketbot.dingtalk") for name in loggers), loggers
    leaks = [
        (name, record.name, record.getMessage()[:120])
        for record in caplog.records
        for name, value in secrets.items()
        if value in _everything(record)
    ]
    assert not leaks, leaks
    # nor does any answer, nor anything sent to the platforms (cards, texts, card updates)
    # (DingTalk's card callback registration carries the app secret by protocol: apiSecret)
    ding = demo.dingtalk.records
    sent = repr(demo.wecom.records) + repr(
        [ding.cards, ding.card_updates, ding.robot_sends, ding.webhook_posts]
    )
    shown = [name for name, value in secrets.items() for text in (*bodies, sent) if value in text]
    assert len(bodies) >= 8 and "template_card" in sent
    assert not shown, shown
