"""Pulling the chat archive (会话存档) into chat records (SQLite and PostgreSQL): the emulator's
archive over HTTP (bot.wecom.archive), the pull and its cursor (bot.archive_sync), and the
"chat-archive" job of the app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import JOBS, RUNTIME, create_app
from bot.archive_sync import JOB_NAME, ArchiveSync
from bot.wecom.archive import ArchiveError, HttpChatArchive, parse_page
from config.settings import load_settings
from core.workorder import ChatRecord
from emulator.wecom import WeComEmulator
from store.archive_cursors import SqlArchiveCursors
from store.chat_records import SqlChatRecords
from store.db import Database
from tests.bot.test_wecom_chat import AGENT, CONFIG, CORP, SECRET, emulator_org
from tests.fakes import FakeClock

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


class Archive:
    def __init__(
        self, emulator: WeComEmulator, clock: FakeClock, url: str, session: aiohttp.ClientSession
    ) -> None:
        self.emulator = emulator
        self.clock = clock
        self.url = url
        self.session = session

    def say(self, sender: str, to: str, text: str) -> str:
        self.clock.advance(seconds=1)
        return self.emulator.archive.record(sender, [to], text).msgid

    def sync(
        self, db: Database, *, name: str = "wecom", page_size: int = 500, max_pages: int = 20
    ) -> ArchiveSync:
        return ArchiveSync(
            HttpChatArchive(self.session, self.url),
            SqlArchiveCursors(db),
            SqlChatRecords(db),
            self.clock,
            name=name,
            page_size=page_size,
            max_pages=max_pages,
        )


@pytest.fixture
async def archive(aiohttp_server: Any) -> AsyncIterator[Archive]:
    clock = FakeClock(T0)
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=clock, org=emulator_org())
    server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
    async with aiohttp.ClientSession() as session:
        yield Archive(emulator, clock, str(server.make_url("/_emulator/archive")), session)


async def test_a_pull_keeps_the_new_messages_and_moves_the_seq(archive: Archive, db: Database) -> None:
    hello = archive.say("XuLi", "wmA", "您好")
    reply = archive.say("wmA", "XuLi", "坏了")
    sync = archive.sync(db)
    report = await sync.pull()
    assert (report.fetched, report.added, report.seq) == (2, 2, 2)
    assert await SqlArchiveCursors(db).seq("wecom") == 2
    got = await SqlChatRecords(db).get([hello, reply])
    assert got == [
        ChatRecord(
            hello,
            "archive",
            datetime(2026, 11, 22, 9, 0, 1, tzinfo=UTC),
            "XuLi",
            ("wmA",),
            content={"text": "您好"},
        ),
        ChatRecord(
            reply,
            "archive",
            datetime(2026, 11, 22, 9, 0, 2, tzinfo=UTC),
            "wmA",
            ("XuLi",),
            content={"text": "坏了"},
        ),
    ]
    assert [r.id for r in await SqlChatRecords(db).between("XuLi", "wmA")] == [reply, hello]

    nothing = await sync.pull()
    assert (nothing.fetched, nothing.added, nothing.seq) == (0, 0, 2)
    more = archive.say("XuLi", "wmA", "稍等")
    report = await sync.pull()
    assert (report.fetched, report.added, report.seq) == (1, 1, 3)
    assert (await SqlChatRecords(db).get([more]))[0].content == {"text": "稍等"}


async def test_duplicates_are_kept_once(archive: Archive, db: Database) -> None:
    for i in range(3):
        archive.say("XuLi", "wmA", f"m{i}")
    assert (await archive.sync(db).pull()).added == 3
    again = await archive.sync(db, name="replayed").pull()  # a cursor that starts over: all seen before
    assert (again.fetched, again.added, again.seq) == (3, 0, 3)
    assert len(await SqlChatRecords(db).between("XuLi", "wmA")) == 3


async def test_pages_and_the_per_run_cap(archive: Archive, db: Database) -> None:
    for i in range(5):
        archive.say("wmA", "XuLi", f"m{i}")
    sync = archive.sync(db, page_size=2, max_pages=2)
    first = await sync.pull()
    assert (first.fetched, first.seq) == (4, 4)
    second = await sync.pull()
    assert (second.fetched, second.seq) == (1, 5)


async def test_a_failed_fetch_keeps_the_cursor(db: Database, aiohttp_server: Any) -> None:
    async def refuse(_request: web.Request) -> web.Response:
        return web.json_response({"errcode": 10001, "errmsg": "system error"})

    app = web.Application()
    app.router.add_get("/archive", refuse)
    server: TestServer = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        sync = ArchiveSync(
            HttpChatArchive(session, str(server.make_url("/archive"))),
            SqlArchiveCursors(db),
            SqlChatRecords(db),
            FakeClock(T0),
        )
        with pytest.raises(ArchiveError, match="errcode 10001"):
            await sync.pull()
    assert await SqlArchiveCursors(db).seq("wecom") == 0


async def test_the_token_goes_as_a_bearer_header_and_errors_say_what(aiohttp_server: Any) -> None:
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.query["seq"] == "1":
            return web.Response(status=503, text="down")
        if request.query["seq"] == "2":
            return web.Response(text="<html>")
        return web.json_response({"errcode": 0, "errmsg": "ok", "chatdata": []})

    app = web.Application()
    app.router.add_get("/archive", answer)
    server: TestServer = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        archive = HttpChatArchive(session, str(server.make_url("/archive")), token="s3cret-archive-token")
        assert (await archive.fetch(0, 10)).records == ()
        with pytest.raises(ArchiveError, match="HTTP 503") as down:
            await archive.fetch(1, 10)
        with pytest.raises(ArchiveError, match="JSON"):
            await archive.fetch(2, 10)
    assert seen == ["Bearer s3cret-archive-token"] * 3
    assert "s3cret" not in str(down.value) and "s3cret" not in repr(archive)


def test_recalls_and_malformed_messages_are_skipped_but_the_seq_moves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = {"msgtype": "text", "from": "XuLi", "tolist": ["wmA"], "roomid": "", "msgtime": 1793520000000}
    body = {
        "errcode": 0,
        "chatdata": [
            {"seq": 4, "msgid": "a", "action": "send", **text, "text": {"content": "hi"}},
            {"seq": 5, "msgid": "b", "action": "recall", **text},
            {
                "seq": 6,
                "msgid": "c",
                "action": "send",
                **{**text, "msgtime": "soon"},
                "text": {"content": "x"},
            },
            {
                "seq": 7,
                "msgid": "d",
                "action": "send",
                **{**text, "msgtype": "image"},
                "image": {"md5sum": "ab"},
            },
            {"seq": 8, "msgid": "e", "action": "send", **text, "text": {}},
        ],
    }
    with caplog.at_level(logging.WARNING, logger="ticketbot.wecom.archive"):
        page = parse_page(body, 3)
    assert page.next_seq == 8
    assert [(r.id, r.msg_type, dict(r.content)) for r in page.records] == [
        ("a", "text", {"text": "hi"}),
        ("d", "image", {"image": {"md5sum": "ab"}}),
    ]
    assert [r.msg_id for r in caplog.records] == ["c", "e"]  # type: ignore[attr-defined]
    with pytest.raises(ArchiveError, match="seq above 3"):
        parse_page({"errcode": 0, "chatdata": [{"seq": 3, "msgid": "z"}]}, 3)
    with pytest.raises(ArchiveError, match="chatdata"):
        parse_page({"errcode": 0}, 0)
    assert parse_page({"errcode": 0, "chatdata": []}, 9).next_seq == 9


async def test_the_app_schedules_the_pull_only_when_configured(archive: Archive, database_url: str) -> None:
    base = {"TICKETBOT_DUE_WORK_SECONDS": "0"}
    off = await create_app(load_settings(env=base, database_url=database_url, config_dir=CONFIG))
    assert JOB_NAME not in off[JOBS].names
    for cleanup in off.on_cleanup:
        await cleanup(off)
    env = {**base, "TICKETBOT_CHAT_ARCHIVE_URL": archive.url, "TICKETBOT_CHAT_ARCHIVE_SECONDS": "30"}
    app = await create_app(load_settings(env=env, database_url=database_url, config_dir=CONFIG))
    try:
        job = app[JOBS].job(JOB_NAME)
        assert job.trigger.interval.total_seconds() == 30
        msgid = archive.say("XuLi", "wmA", "job")
        await app[JOBS].run(JOB_NAME)
        assert [r.id for r in await SqlChatRecords(app[RUNTIME].db).get([msgid])] == [msgid]
    finally:
        for cleanup in app.on_cleanup:
            await cleanup(app)
