"""The ticket page with WeCom on, against the real WeCom emulator server (SQLite and PostgreSQL):
without a valid link the browser goes through WeCom's OAuth (connect/oauth2/authorize -> code ->
/tickets/{id}/oauth -> getuserinfo -> a freshly signed link); chat replies link to the page signed
for the person chatting."""

from __future__ import annotations

import itertools
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import RUNTIME, create_app
from bot.page.links import LinkSigner
from config.settings import load_settings
from core import commands as c
from core.service import Done
from emulator.wecom import SystemClock, WeComEmulator
from emulator.wecom_oauth import USER_COOKIE
from tests.bot.test_wecom_chat import AES_KEY, AGENT, CONFIG, CORP, SECRET, TOKEN, Chat, emulator_org
from tests.fakes import FakeClock

PUBLIC = "https://bot.example.com"
LINK_SECRET = "oauth-page-test-secret-0123456789"
LEAVE = {
    "leave_type": "annual",
    "start_date": "2026-03-02",
    "end_date": "2026-03-03",
    "days": 2,
    "reason": "事",
}


@dataclass
class OAuth:
    chat: Chat
    emulator_url: str
    ticket_id: int

    @property
    def client(self) -> TestClient[web.Request, web.Application]:
        return self.chat.client

    async def start(self, path: str | None = None) -> str:
        """GET the page without a valid link: the authorize URL it redirects to."""
        resp = await self.client.get(path or f"/tickets/{self.ticket_id}", allow_redirects=False)
        assert resp.status == 302, await resp.text()
        assert (
            resp.headers["Cache-Control"] == "no-store" and resp.headers["Referrer-Policy"] == "no-referrer"
        )
        return resp.headers["Location"]

    async def authorize(self, location: str, userid: str | None) -> aiohttp.ClientResponse:
        """The browser at WeCom (the emulator): the fragment stays in the browser; the emulator's
        chat page has set the cookie naming who is chatting."""
        headers = {"Cookie": f"{USER_COOKIE}={userid}"} if userid else {}
        return await self.client.session.get(location.split("#")[0], headers=headers, allow_redirects=False)

    async def back(self, location: str) -> aiohttp.ClientResponse:
        """WeCom sends the browser back to ticketbot's redirect_uri."""
        assert location.startswith(f"{PUBLIC}/tickets/{self.ticket_id}/oauth?code="), location
        return await self.client.get(location.removeprefix(PUBLIC), allow_redirects=False)

    async def login(self, userid: str) -> str:
        """The whole flow for `userid`: the /oauth URL WeCom sent the browser back to."""
        resp = await self.authorize(await self.start(), userid)
        assert resp.status == 302, await resp.text()
        return resp.headers["Location"]


@pytest.fixture
async def oauth(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> OAuth:
    emulator = WeComEmulator(corp_id=CORP, apps={AGENT: SECRET}, clock=SystemClock(), org=emulator_org())
    server: TestServer = await aiohttp_server(emulator.app(), access_log=None)
    base = str(server.make_url("")).rstrip("/")
    env = {
        "TICKETBOT_WECOM_CORP_ID": CORP,
        "TICKETBOT_WECOM_AGENT_ID": str(AGENT),
        "TICKETBOT_WECOM_SECRET": SECRET,
        "TICKETBOT_WECOM_TOKEN": TOKEN,
        "TICKETBOT_WECOM_AES_KEY": AES_KEY,
        "TICKETBOT_WECOM_API_BASE": base,
        "TICKETBOT_WECOM_OAUTH_BASE": base,
        "TICKETBOT_PUBLIC_URL": PUBLIC,
        "TICKETBOT_LINK_SECRET": LINK_SECRET,
    }
    settings = load_settings(env=env, database_url=database_url, config_dir=CONFIG)
    app = await create_app(settings)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    chat = Chat(emulator, client, app, itertools.count(7001))
    await chat.settle()
    done = await app[RUNTIME].service.create(c.Create("liuyang", 1, 151, LEAVE))
    assert isinstance(done, Done), done
    await chat.settle()
    return OAuth(chat, base, done.ticket.id)


async def test_oauth_end_to_end_gives_a_signed_link_that_works(oauth: OAuth) -> None:
    tid = oauth.ticket_id
    location = await oauth.start()
    redirect_uri = urllib.parse.quote(f"{PUBLIC}/tickets/{tid}/oauth", safe="")
    assert location.startswith(
        f"{oauth.emulator_url}/connect/oauth2/authorize?appid={CORP}&redirect_uri={redirect_uri}"
        "&response_type=code&scope=snsapi_base&state="
    )
    assert location.endswith(f"&agentid={AGENT}#wechat_redirect")

    resp = await oauth.authorize(location, "WangQiang")
    assert resp.status == 302
    back = resp.headers["Location"]
    resp = await oauth.back(back)
    assert resp.status == 303
    link = urllib.parse.urljoin(f"/tickets/{tid}/oauth", resp.headers["Location"])
    assert link.startswith(f"/tickets/{tid}?u=wangqiang&e=")
    page = await oauth.client.get(link)
    text = await page.text()
    assert page.status == 200 and "刘洋 请假 2 天" in text and 'value="transition:152"' in text
    assert "王强(wangqiang)" in text

    # the code WeCom gave is used up: coming back with it again is refused
    again = await oauth.back(back)
    assert again.status == 403 and "登录凭证无效" in await again.text()
    assert oauth.chat.emulator.records.failures[-1].errcode == 40029


async def test_an_expired_or_tampered_link_goes_through_oauth_too(oauth: OAuth) -> None:
    tid = oauth.ticket_id
    old = LinkSigner(
        LINK_SECRET.encode(), PUBLIC, timedelta(hours=1), FakeClock(datetime(2020, 1, 1, tzinfo=UTC))
    )
    location = await oauth.start(old.link(tid, "wangqiang").removeprefix(PUBLIC))
    assert "/connect/oauth2/authorize?" in location
    location = await oauth.start(f"/tickets/{tid}?u=wangqiang&e=1&s=forged")
    assert "/connect/oauth2/authorize?" in location


async def test_oauth_checks_the_person_and_the_state(oauth: OAuth) -> None:
    tid = oauth.ticket_id
    # a member WeCom knows but ticketbot's directory does not
    resp = await oauth.back(await oauth.login("Stranger"))
    assert resp.status == 403 and "不在本系统的通讯录" in await resp.text()
    # a member who may not see the ticket gets in, then the page refuses
    resp = await oauth.back(await oauth.login("ZhouMin"))
    page = await oauth.client.get(urllib.parse.urljoin(f"/tickets/{tid}/oauth", resp.headers["Location"]))
    assert page.status == 403 and "无权查看" in await page.text()
    # a forged or missing state, a missing code
    back = await oauth.login("WangQiang")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))
    forged = f"/tickets/{tid}/oauth?code={query['code']}&state=1999999999z{'0' * 32}"
    resp = await oauth.client.get(forged, allow_redirects=False)
    assert resp.status == 403 and "登录已失效" in await resp.text()
    resp = await oauth.client.get(f"/tickets/{tid + 1}/oauth?code={query['code']}&state={query['state']}")
    assert resp.status == 403  # the state names another ticket
    resp = await oauth.client.get(f"/tickets/{tid}/oauth?state={query['state']}")
    assert resp.status == 400 and "没有收到登录凭证" in await resp.text()
    resp = await oauth.client.get(f"/tickets/abc/oauth?code=x&state={query['state']}")
    assert resp.status == 404
    # the code was never used by those refusals: it still works
    assert (await oauth.back(back)).status == 303


async def test_without_the_chat_cookie_wecom_asks_who_you_are(oauth: OAuth) -> None:
    resp = await oauth.authorize(await oauth.start(), None)
    text = await resp.text()
    assert resp.status == 200 and "王强" in text
    link = next(part.split('"')[0] for part in text.split('href="')[1:] if "as=WangQiang" in part)
    resp = await oauth.client.session.get(
        oauth.emulator_url + link.replace("&amp;", "&"), allow_redirects=False
    )
    assert resp.status == 302
    assert (await oauth.back(resp.headers["Location"])).status == 303


async def test_wecom_unavailable_is_a_clear_page_not_a_500(oauth: OAuth) -> None:
    back = await oauth.login("WangQiang")
    oauth.chat.emulator.fail_next(1, 48002, path="/cgi-bin/auth/getuserinfo")
    resp = await oauth.back(back)
    assert resp.status == 502 and "稍后再试" in await resp.text()
    assert (await oauth.back(back)).status == 303  # the code survived the failure


async def test_chat_replies_link_to_the_page_signed_for_the_person_chatting(oauth: OAuth) -> None:
    tid = oauth.ticket_id
    for userid, username in (("WangQiang", "wangqiang"), ("LiuYang", "liuyang")):
        reply = await oauth.chat.say(userid, f"查看 {tid}")
        link = reply.splitlines()[-1]
        assert link.startswith(f"{PUBLIC}/tickets/{tid}?u={username}&e=")
        assert int(reply.rsplit("/tickets/", 1)[1].split("?")[0]) == tid
        page = await oauth.client.get(link.removeprefix(PUBLIC), allow_redirects=False)
        assert page.status == 200
    (card,) = oauth.chat.cards("WangQiang")
    url = card.body["template_card"]["card_action"]["url"]
    assert url.startswith(f"{PUBLIC}/tickets/{tid}?u=wangqiang&e=")
    assert (await oauth.client.get(url.removeprefix(PUBLIC), allow_redirects=False)).status == 200
