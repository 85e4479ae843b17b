"""The ticket page through the real app (SQLite and PostgreSQL): what a viewer sees, who may see
it, actions from the page (pinned to the state it showed), bad input as 4xx pages, the security
headers, and the signed links the cards carry."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import NOTIFIER, RUNTIME, create_app
from bot.page import render
from bot.page.links import LinkSigner
from bot.page.routes import PAGE
from config.settings import load_settings
from core import commands as c
from core.service import Done
from core.ticket import Ticket
from store.queries import SqlTicketQueries
from tests.fakes import FakeClock, RecordingSender

CONFIG = Path(__file__).resolve().parents[2] / "config"
PUBLIC = "https://bot.example.com"
LINK_SECRET = "ticket-page-test-secret-0123456789"
ANCESTOR = "http://127.0.0.1:8081"
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    f"frame-ancestors 'self' {ANCESTOR}"
)
FIELDS = {
    "leave_type": "annual",
    "start_date": "2026-03-02",
    "end_date": "2026-03-03",
    "days": 2,
    "reason": "家里有事 <b>&</b>",
}
APPROVE, REJECT, SUBMIT, FILE = 152, 153, 151, 156  # leave.yaml


@dataclass
class Page:
    client: TestClient[web.Request, web.Application]
    app: web.Application
    links: LinkSigner
    sender: RecordingSender
    ticket_id: int

    def path(self, username: str, ticket_id: int | None = None) -> str:
        return self.links.link(ticket_id or self.ticket_id, username).removeprefix(PUBLIC)

    def auth(self, username: str) -> dict[str, str]:
        query = urllib.parse.urlsplit(self.path(username)).query
        return dict(urllib.parse.parse_qsl(query))

    async def ticket(self) -> Ticket:
        found = await SqlTicketQueries(self.app[RUNTIME].db).get_ticket(self.ticket_id)
        assert found is not None
        return found

    async def logs(self) -> int:
        return len(await SqlTicketQueries(self.app[RUNTIME].db).flow_logs(self.ticket_id))

    async def form(self, username: str, **fields: str) -> dict[str, str]:
        """The hidden fields a page for `username` carries now, plus `fields`."""
        return {**self.auth(username), "state": str((await self.ticket()).state_id), **fields}

    async def post(self, data: Any, ticket_id: int | None = None) -> aiohttp.ClientResponse:
        return await self.client.post(
            f"/tickets/{ticket_id or self.ticket_id}/act", data=data, allow_redirects=False
        )

    async def follow(self, resp: aiohttp.ClientResponse) -> aiohttp.ClientResponse:
        """GET the page a 303 after an action points to (relative to the action's URL)."""
        assert resp.status == 303, await resp.text()
        target = urllib.parse.urljoin(resp.url.path, resp.headers["Location"])
        return await self.client.get(target)


@pytest.fixture
async def page(aiohttp_client: Any, database_url: str) -> Page:
    env = {
        "TICKETBOT_PUBLIC_URL": PUBLIC,
        "TICKETBOT_LINK_SECRET": LINK_SECRET,
        "TICKETBOT_FRAME_ANCESTORS": ANCESTOR,
    }
    settings = load_settings(env=env, database_url=database_url, config_dir=CONFIG)
    sender = RecordingSender()
    app = await create_app(settings, senders={"wecom": sender})
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    done = await app[RUNTIME].service.create(c.Create("liuyang", 1, SUBMIT, FIELDS))
    assert isinstance(done, Done), done
    return Page(client, app, app[PAGE].links, sender, done.ticket.id)


def _html(text: str) -> str:
    return re.sub(r"\s+", " ", text)


async def assert_page(resp: aiohttp.ClientResponse, status: int, *words: str) -> str:
    text = await resp.text()
    assert resp.status == status, text[-600:]
    assert resp.content_type == "text/html"
    assert resp.headers["Content-Security-Policy"] == CSP
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    for word in words:
        assert word in text, word
    return text


# ---------------------------------------------------------------- seeing the page


async def test_a_handler_sees_fields_log_diagram_and_their_decisions(page: Page) -> None:
    path = page.path("wangqiang")
    resp = await page.client.get(path)
    text = await assert_page(resp, 200, "刘洋 请假 2 天", "部门领导审批", "王强(wangqiang)")
    # the fields with their labels and display values, escaped
    for label, value in (("请假类型", "年假"), ("开始日期", "2026-03-02"), ("请假天数", "2")):
        assert re.search(f"<dt>{label}</dt><dd>{value}</dd>", text), label
    assert "家里有事 &lt;b&gt;&amp;&lt;/b&gt;" in text and "<b>&</b>" not in text
    # the log, the diagram with the current state highlighted
    assert "刘洋(liuyang)</span> 提交" in text
    assert re.search(r'data-state-id="102" data-status="current" aria-current="step"', text)
    assert re.search(r'data-state-id="101" data-status="passed"', text)
    assert "<svg" in text and "<script" not in text
    # exactly the decisions the engine offers him, in one form pinned to the state shown
    assert f'value="transition:{APPROVE}"' in text and f'value="transition:{REJECT}"' in text
    auth = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))  # the link it was opened with
    for name, value in (*auth.items(), ("state", "102")):
        assert f'<input type="hidden" name="{name}" value="{value}">' in text
    assert f'action="{page.ticket_id}/act"' in text
    assert 'value="deliver"' in text and 'value="comment"' in text


async def test_the_creator_sees_the_page_without_the_handlers_buttons(page: Page) -> None:
    text = await assert_page(await page.client.get(page.path("liuyang")), 200, "刘洋 请假 2 天")
    assert "transition:" not in text and 'value="deliver"' not in text
    assert 'value="retreat"' in text and 'value="comment"' in text  # 102 allows withdrawing


@pytest.mark.parametrize("viewer", ["zhoumin", "nobody"])
async def test_someone_who_may_not_view_the_ticket_gets_403(page: Page, viewer: str) -> None:
    text = await assert_page(await page.client.get(page.path(viewer)), 403, "无权查看")
    assert "刘洋 请假" not in text and "家里有事" not in text


async def test_a_workflow_viewer_may_look_but_not_act(page: Page) -> None:
    text = await assert_page(await page.client.get(page.path("yangfan")), 200, "刘洋 请假 2 天")
    assert "transition:" not in text
    resp = await page.post(await page.form("yangfan", action=f"transition:{APPROVE}"))
    await assert_page(resp, 403, "未执行")
    assert (await page.ticket()).state_id == 102


# ---------------------------------------------------------------- acting on it


async def test_approving_from_the_page_moves_the_ticket_once_and_a_stale_form_changes_nothing(
    page: Page,
) -> None:
    form = await page.form("wangqiang", action=f"transition:{APPROVE}", suggestion="同意，注意交接")
    resp = await page.post(form)
    assert resp.status == 303
    location = resp.headers["Location"]
    assert location.startswith(f"../{page.ticket_id}?u=wangqiang&e=")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["m"] == ["已同意"]
    await assert_page(
        await page.follow(resp), 200, '<div class="flash ok" role="status">已同意</div>', "人事备案"
    )
    moved = await page.ticket()
    assert moved.state_id == 104 and moved.handlers == ("yangfan", "chenjing")
    logs = await page.logs()

    again = await page.post(form)  # the same (now stale) form, e.g. a second tab or a double tap
    text = await assert_page(again, 409, "已经有人处理过了", "already handled")
    assert 'class="flash error"' in text and 'data-state-id="104" data-status="current"' in text
    assert (await page.ticket()).version == moved.version and await page.logs() == logs


async def test_accept_then_finish_from_the_page(page: Page) -> None:
    await page.post(await page.form("wangqiang", action=f"transition:{APPROVE}"))
    text = await assert_page(await page.client.get(page.path("yangfan")), 200, 'value="accept"')
    assert f'value="transition:{FILE}"' not in text  # accept first
    await assert_page(
        await page.follow(await page.post(await page.form("yangfan", action="accept"))), 200, "已接单"
    )
    accepted = await page.ticket()
    assert accepted.accepted_by == "yangfan" and accepted.handlers == ("yangfan",)
    resp = await page.post(await page.form("yangfan", action=f"transition:{FILE}"))
    await assert_page(await page.follow(resp), 200, "已备案完成")
    assert (await page.ticket()).is_ended


async def test_comment_and_deliver_by_name(page: Page) -> None:
    resp = await page.post(await page.form("liuyang", action="comment", suggestion="请尽快"))
    await assert_page(await page.follow(resp), 200, "已评论", "请尽快")
    resp = await page.post(await page.form("wangqiang", action="deliver", target="李娜", suggestion="你来"))
    await assert_page(await page.follow(resp), 200, "已转交")
    assert (await page.ticket()).handlers == ("lina",)


async def test_refusals_show_the_reason_and_change_nothing(page: Page) -> None:
    before = await page.ticket()
    cases = [
        (await page.form("liuyang", action=f"transition:{APPROVE}"), 403, "未执行"),  # not a handler
        (await page.form("wangqiang", action="comment", suggestion="  "), 400, "评论内容不能为空"),
        (await page.form("wangqiang", action="deliver", target="nobody"), 400, "找不到在职的用户"),
        (await page.form("wangqiang", action="deliver", target=""), 400, "请填写"),
        (await page.form("wangqiang", action="add_node", target="wangqiang"), 400, "consult yourself"),
        (await page.form("wangqiang", action="dance"), 400, "未知的操作"),
        (await page.form("wangqiang", action="transition:99999"), 400, "这个操作不存在"),
        (await page.form("wangqiang", action="transition:156"), 400, "not available"),
        ({**await page.form("wangqiang", action="deliver", target="lina"), "state": "101"}, 409, "moved on"),
        (
            {**await page.form("wangqiang", action="comment", suggestion="x"), "state": "abc"},
            400,
            "表单不完整",
        ),
        (await page.form("wangqiang", action="comment", suggestion="长" * 2001), 400, "意见太长"),
    ]
    for form, status, words in cases:
        await assert_page(await page.post(form), status, words)
    after = await page.ticket()
    assert after.version == before.version and after.handlers == ("wangqiang",)


async def test_the_forms_of_a_refusal_post_to_the_action_url_and_work(page: Page) -> None:
    """A refusal is answered in place, at /tickets/{id}/act: its forms must post there too (a
    relative "{id}/act" would resolve to /tickets/{id}/{id}/act)."""
    stale = {**await page.form("wangqiang", action="deliver", target="lina"), "state": "101"}
    refused = await page.post(stale)
    text = await assert_page(refused, 409, "moved on")
    actions = set(re.findall(r'<form method="post" action="([^"]*)">', text))
    assert actions, text
    targets = {urllib.parse.urljoin(refused.url.path, a) for a in actions}
    assert targets == {f"/tickets/{page.ticket_id}/act"}
    # the approve button of that page, as the browser submits it
    form = {**page.auth("wangqiang"), "state": "102", "action": f"transition:{APPROVE}"}
    resp = await page.client.post(targets.pop(), data=form, allow_redirects=False)
    await assert_page(await page.follow(resp), 200, "已同意")
    assert (await page.ticket()).state_id == 104


async def test_required_fields_of_the_transition_are_filled_in_on_the_page(page: Page) -> None:
    resp = await page.post(
        await page.form("wangqiang", action=f"transition:{REJECT}", suggestion="天数写错了")
    )
    await assert_page(await page.follow(resp), 200, "已驳回")
    # back at the start: the creator gets the start form, prefilled
    text = await assert_page(await page.client.get(page.path("liuyang")), 200)
    assert re.search(r'<input type="number" name="f\.days" value="2" step="1" required>', text)
    assert '<option value="annual" selected>年假</option>' in text
    assert 'name="f.proxy"' in text  # optional user field
    bad = await page.post(await page.form("liuyang", action=f"transition:{SUBMIT}", **{"f.days": "两天"}))
    await assert_page(bad, 400, "未执行", "days")
    assert (await page.ticket()).state_id == 101
    ok = await page.post(
        await page.form("liuyang", action=f"transition:{SUBMIT}", **{"f.days": "3", "f.reason": "改好了"})
    )
    await assert_page(await page.follow(ok), 200, "已提交")
    moved = await page.ticket()
    assert moved.state_id == 102 and moved.fields["days"] == 3 and moved.fields["reason"] == "改好了"


async def test_a_forged_flash_message_is_not_shown(page: Page) -> None:
    text = await assert_page(
        await page.client.get(page.path("wangqiang") + "&m=" + urllib.parse.quote("请转账")), 200
    )
    assert "请转账" not in text and "flash" not in _html(text).split("<main>")[1][:40]


# ---------------------------------------------------------------- bad input


async def test_bad_ids_and_links_are_4xx_pages(page: Page) -> None:
    tid = page.ticket_id
    good = page.auth("wangqiang")
    old = LinkSigner(
        LINK_SECRET.encode(), PUBLIC, timedelta(hours=1), FakeClock(datetime(2020, 1, 1, tzinfo=UTC))
    )
    other = await page.app[RUNTIME].service.create(c.Create("zhoumin", 1, SUBMIT, FIELDS))
    assert isinstance(other, Done)
    cases = [
        ("/tickets/abc", 404, "工单不存在"),
        ("/tickets/0", 404, "工单不存在"),
        ("/tickets/%C2%B2", 404, "工单不存在"),
        ("/tickets/99999999999999999999999", 404, "工单不存在"),
        ("/tickets/999999", 404, "工单不存在"),
        (f"/tickets/{tid}", 403, f"查看 {tid}"),
        (f"/tickets/{tid}?u=wangqiang", 403, "链接无效"),
        (f"/tickets/{tid}?u=liuyang&e={good['e']}&s={good['s']}", 403, "链接无效"),
        (f"/tickets/{tid}?u=wangqiang&e={int(good['e']) + 1}&s={good['s']}", 403, "链接无效"),
        (f"/tickets/{tid}?u=%00&e=1&s=x", 403, "链接无效"),
        (
            page.path("wangqiang", other.ticket.id).replace(f"/tickets/{other.ticket.id}", f"/tickets/{tid}"),
            403,
            "链接无效",
        ),
        (old.link(tid, "wangqiang").removeprefix(PUBLIC), 410, "链接已过期"),
        (f"/tickets/{tid}/oauth?code=x&state=y", 404, "工单不存在"),  # no OAuth without WeCom
        (f"/tickets/{tid}/act", 405, "请回到工单页面"),  # e.g. a refusal's address, reopened
        ("/tickets/abc/act", 404, "工单不存在"),
    ]
    for path, status, words in cases:
        await assert_page(await page.client.get(path, allow_redirects=False), status, words)


async def test_bad_forms_are_4xx_pages_and_change_nothing(page: Page) -> None:
    before = await page.ticket()
    expired = LinkSigner(
        LINK_SECRET.encode(), PUBLIC, timedelta(hours=1), FakeClock(datetime(2020, 1, 1, tzinfo=UTC))
    )
    old_auth = dict(
        urllib.parse.parse_qsl(urllib.parse.urlsplit(expired.link(page.ticket_id, "wangqiang")).query)
    )
    good = await page.form("wangqiang", action=f"transition:{APPROVE}")
    upload = aiohttp.FormData({**good})
    upload.add_field("f.reason", b"\x00\x01", filename="x.bin", content_type="application/octet-stream")
    cases: list[tuple[Any, int, str]] = [
        (None, 403, "链接无效"),
        ({"action": f"transition:{APPROVE}", "state": "102"}, 403, "链接无效"),
        ({**good, "s": ("B" if good["s"][0] == "A" else "A") + good["s"][1:]}, 403, "链接无效"),
        ({**good, **old_auth}, 410, "链接已过期"),
        ({**good, "suggestion": "a\x00b"}, 400, "无法处理"),
        (upload, 400, "无法处理"),
        ({**good, "suggestion": "x" * (1024 * 1024 + 10)}, 413, "太大"),
    ]
    for data, status, words in cases:
        await assert_page(await page.post(data), status, words)
    resp = await page.client.post(f"/tickets/{page.ticket_id}/act", json=good, allow_redirects=False)
    await assert_page(resp, 403, "链接无效")
    await assert_page(await page.post(good, ticket_id=999999), 403, "链接无效")  # signed for another ticket
    await assert_page(await page.client.post("/tickets/abc/act", data=good), 404, "工单不存在")
    # a body that cannot be decoded (last: the server drops that connection afterwards)
    broken = {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"}
    resp = await page.client.post(f"/tickets/{page.ticket_id}/act", data=b"\x1f\x8b not gzip", headers=broken)
    await assert_page(resp, 400, "无法处理")
    assert (await page.ticket()).version == before.version


# ---------------------------------------------------------------- links in cards


async def test_every_card_links_to_the_page_signed_for_its_recipient(page: Page) -> None:
    await page.app[NOTIFIER].drain()
    (card,) = page.sender.to("WangQiang")
    assert card.link_url.startswith(f"{PUBLIC}/tickets/{page.ticket_id}?u=wangqiang&e=")
    text = await assert_page(await page.client.get(card.link_url.removeprefix(PUBLIC)), 200)
    assert f'value="transition:{APPROVE}"' in text
    # after the approval, the HR people's cards are theirs
    await page.post(await page.form("wangqiang", action=f"transition:{APPROVE}"))
    await page.app[NOTIFIER].drain()
    for userid, username in (("YangFan", "yangfan"), ("ChenJing", "chenjing")):
        (hr,) = page.sender.to(userid)
        assert f"/tickets/{page.ticket_id}?u={username}&" in hr.link_url
        await assert_page(await page.client.get(hr.link_url.removeprefix(PUBLIC)), 200, 'value="accept"')


def test_render_escapes_every_text() -> None:
    evil = '<img src=x onerror="alert(1)">&'
    view = render.PageView(
        ticket_id=1,
        title=evil,
        sn=evil,
        workflow=evil,
        state=evil,
        status=evil,
        ended=False,
        handlers=evil,
        fields=(render.FieldRow(evil, evil),),
        diagram="<svg></svg>",
        logs=(render.LogRow(evil, evil, evil, evil, evil),),
        actions=render.Actions(
            decisions=(render.Button(evil, evil),),
            inputs=(render.Input("k", evil, "select", (evil,), choices=((evil, evil),), hint=evil),),
            alerts=(evil,),
            deliver=evil,
            comment=True,
        ),
        viewer=evil,
        auth={"u": evil},
        flash=evil,
    )
    html = render.page(view) + render.message_page(evil, evil, evil)
    assert "<img" not in html and 'onerror="' not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in html


async def test_without_a_link_secret_links_work_until_a_restart_and_one_warning_says_so(
    aiohttp_client: Any, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        env={"TICKETBOT_PUBLIC_URL": PUBLIC}, database_url=database_url, config_dir=CONFIG
    )
    with caplog.at_level("WARNING", logger="ticketbot.app"):
        first = await create_app(settings)
    warnings = [r for r in caplog.records if "TICKETBOT_LINK_SECRET" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    client: TestClient[web.Request, web.Application] = await aiohttp_client(first)
    done = await first[RUNTIME].service.create(c.Create("liuyang", 1, SUBMIT, FIELDS))
    assert isinstance(done, Done)
    path = first[PAGE].links.link(done.ticket.id, "wangqiang").removeprefix(PUBLIC)
    assert (await client.get(path)).status == 200
    restarted = await create_app(settings)  # a new process: a new random key
    other: TestClient[web.Request, web.Application] = await aiohttp_client(restarted)
    assert (await other.get(path)).status == 403


async def test_the_link_secret_is_never_logged(
    aiohttp_client: Any, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"TICKETBOT_PUBLIC_URL": PUBLIC, "TICKETBOT_LINK_SECRET": LINK_SECRET}
    with caplog.at_level("DEBUG"):
        app = await create_app(load_settings(env=env, database_url=database_url, config_dir=CONFIG))
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        done = await app[RUNTIME].service.create(c.Create("liuyang", 1, SUBMIT, FIELDS))
        assert isinstance(done, Done)
        await client.get(app[PAGE].links.link(done.ticket.id, "wangqiang").removeprefix(PUBLIC))
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert LINK_SECRET not in logged and "TICKETBOT_LINK_SECRET is not set" not in logged


def test_times_are_shown_in_china_time_as_on_the_cards() -> None:
    from bot.page.view import fmt_time

    assert fmt_time(datetime(2026, 11, 22, 1, 5)) == "2026-11-22 09:05"  # the store's naive UTC
    assert fmt_time(datetime(2026, 11, 21, 20, 0, tzinfo=UTC)) == "2026-11-22 04:00"
    assert fmt_time(None) == ""
