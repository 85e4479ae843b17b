"""`ticketbot demo` as `make demo` runs it (SQLite and PostgreSQL): both servers up on real ports,
the web chat page's messages and clicks reach ticketbot as the platforms' real callbacks, and the
emulator's chaos (duplicate and late-replayed callbacks, stalled API calls) changes nothing that
should not change."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from bot.__main__ import main
from bot.app import RUNTIME
from bot.demo import Demo, banner, demo_env, emulator_orgs
from config.org import load_org
from config.settings import load_settings
from store.queries import SqlTicketQueries
from tests.bot.demo_harness import WAIT, settle

LEAVE = "发起 请假申请 start_date=2026-12-01 end_date=2026-12-02 days=2 reason=家里有事 proxy=zhaolei"


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with session.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def _entries(session: aiohttp.ClientSession, demo: Demo, platform: str, userid: str) -> list[Any]:
    url = f"{demo.urls.chat}_chat/timeline"
    async with session.get(url, params={"platform": platform, "userid": userid}) as resp:
        assert resp.status == 200
        entries: list[Any] = (await resp.json())["entries"]
        return entries


def _texts(entries: list[Any]) -> list[str]:
    return [e["text"]["text"] for e in entries if e["direction"] == "in" and e["kind"] == "text"]


async def _ticket_count(demo: Demo) -> int:
    _, total = await SqlTicketQueries(demo.app[RUNTIME].db).list_tickets(username="liuyang", category="owner")
    return total


async def test_both_servers_answer_and_the_banner_says_where(demo: Demo) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{demo.urls.ticketbot}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
        async with session.get(demo.urls.chat) as resp:
            assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
        async with session.get(f"{demo.urls.chat}_chat/people") as resp:
            people = await resp.json()
    assert {"LiuYang", "WangQiang"} <= {p["userid"] for p in people["wecom"]}
    assert {"staff0005", "staff0004"} <= {p["userid"] for p in people["dingtalk"]}
    text = banner(demo)
    assert demo.urls.chat in text and demo.urls.ticketbot in text and "Ctrl-C" in text


async def test_a_duplicated_and_a_late_replayed_message_create_one_ticket(demo: Demo) -> None:
    wecom = demo.emulator.redelivery["wecom"]
    wecom.duplicate_next(1)
    async with aiohttp.ClientSession() as session:
        status, _ = await _post(
            session, f"{demo.urls.chat}_chat/send", {"platform": "wecom", "userid": "LiuYang", "text": LEAVE}
        )
        assert status == 200
        await settle(demo)
        assert wecom.duplicates_sent == 1
        assert await wecom.replay() == 1  # WeCom retries the same request, late
        await settle(demo)
        replies = [t for t in _texts(await _entries(session, demo, "wecom", "LiuYang")) if "已发起工单" in t]
        assert len(replies) == 1, replies
        assert await _ticket_count(demo) == 1


async def test_a_replayed_click_changes_nothing_more(demo: Demo) -> None:
    async with aiohttp.ClientSession() as session:
        await _post(
            session, f"{demo.urls.chat}_chat/send", {"platform": "wecom", "userid": "LiuYang", "text": LEAVE}
        )
        await settle(demo)
        (card,) = [e for e in await _entries(session, demo, "wecom", "WangQiang") if e["kind"] == "card"]
        redelivery = demo.emulator.redelivery["wecom"]
        await redelivery.replay()  # forget the message; keep only the click
        status, _ = await _post(
            session,
            f"{demo.urls.chat}_chat/click",
            {
                "platform": "wecom",
                "userid": "WangQiang",
                "card_id": card["card_id"],
                "key": _key(card, "同意"),
            },
        )
        assert status == 200
        await settle(demo)
        sent_before = len(demo.wecom.records.messages)
        updates_before = len(demo.wecom.records.updates)
        assert await redelivery.replay() == 1
        await settle(demo)
        # the replayed click was a duplicate: no new card, no new update, no second transition
        assert len(demo.wecom.records.messages) == sent_before
        assert len(demo.wecom.records.updates) == updates_before
        (after,) = [e for e in await _entries(session, demo, "wecom", "WangQiang") if e["kind"] == "card"]
        assert after["card"]["result"].startswith("已同意 · 王强")


async def test_a_stalled_platform_api_delays_the_reply_but_loses_nothing(demo: Demo) -> None:
    demo.wecom.stall_next(1, path="/cgi-bin/message/send")
    async with aiohttp.ClientSession() as session:
        status, _ = await _post(
            session, f"{demo.urls.chat}_chat/send", {"platform": "wecom", "userid": "LiuYang", "text": "帮助"}
        )
        assert status == 200  # the callback is acknowledged at once; the reply waits on the API
        async with asyncio.timeout(WAIT):
            await demo.wecom.stalls.holding.wait()
        assert not _texts(await _entries(session, demo, "wecom", "LiuYang"))
        demo.wecom.stalls.release()
        await settle(demo)
        (reply,) = _texts(await _entries(session, demo, "wecom", "LiuYang"))
        assert "帮助" in reply


def _key(entry: Any, label: str) -> str:
    (key,) = [b["key"] for b in entry["card"]["buttons"] if b["text"] == label]
    return str(key)


def test_the_demo_directory_is_the_config_org_on_both_platforms() -> None:
    settings = load_settings(env={})
    org = load_org(settings.config_dir)
    wecom, ding = emulator_orgs(org)
    assert {u["userid"] for u in wecom["users"]} == {
        u.wecom_userid for u in org.users.values() if u.wecom_userid
    }
    assert {u["userid"] for u in ding["users"]} == {
        u.dingtalk_staff_id for u in org.users.values() if u.dingtalk_staff_id
    }
    assert {d["id"] for d in wecom["departments"]} == set(org.departments)
    li = next(u for u in wecom["users"] if u["userid"] == "LiuYang")
    assert li["name"] == "刘洋" and li["department"] == [2]


def test_demo_settings_point_both_platforms_at_the_emulator_and_keep_the_rest() -> None:
    env = demo_env(
        {
            "TICKETBOT_WECOM_SECRET": "a-real-one",
            "TICKETBOT_LOG_LEVEL": "DEBUG",
            "TICKETBOT_LINK_SECRET": "my-own-link-secret-0123",
        },
        ticketbot_url="http://127.0.0.1:1",
        emulator_url="http://127.0.0.1:2",
    )
    settings = load_settings(env=env)
    assert settings.wecom_enabled and settings.dingtalk_enabled
    assert env["TICKETBOT_WECOM_API_BASE"] == env["TICKETBOT_DINGTALK_API_BASE"] == "http://127.0.0.1:2"
    assert env["TICKETBOT_WECOM_SECRET"] != "a-real-one"  # never a real platform's credentials
    assert env["TICKETBOT_LOG_LEVEL"] == "DEBUG" and env["TICKETBOT_LINK_SECRET"] == "my-own-link-secret-0123"


def test_demo_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--emulator-port" in out and "Ctrl-C" in out
