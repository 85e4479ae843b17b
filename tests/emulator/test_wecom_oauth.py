"""The WeCom emulator's web OAuth: the authorize page (cookie, member picker, error pages) and
auth/getuserinfo (single-use codes, 5 minutes on the emulator's clock, per app, token checks,
chaos)."""

from __future__ import annotations

import urllib.parse
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from emulator.wecom import WeComEmulator
from emulator.wecom_oauth import CODE_TTL, USER_COOKIE
from tests.fakes import FakeClock

CORP = "ww-corp-1"
AGENT, OTHER_AGENT = 1000002, 1000003
SECRET, OTHER_SECRET = "app-secret-xyz", "other-secret-abc"
ORG: dict[str, list[dict[str, Any]]] = {
    "departments": [{"id": 1, "name": "总部", "parentid": 0}],
    "users": [
        {"userid": "zhangsan", "name": "张三", "department": [1]},
        {"userid": "lisi", "name": "李四 <admin>", "department": [1]},
    ],
}
BACK = "https://bot.example.com/tickets/12/oauth"


class Env:
    def __init__(
        self, client: TestClient[web.Request, web.Application], emulator: WeComEmulator, clock: FakeClock
    ) -> None:
        self.client = client
        self.emulator = emulator
        self.clock = clock

    def authorize_path(self, **overrides: str | None) -> str:
        params: dict[str, str | None] = {
            "appid": CORP,
            "redirect_uri": BACK,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": "1700000000zabc123",
            "agentid": str(AGENT),
            **overrides,
        }
        given = {k: v for k, v in params.items() if v is not None}
        return "/connect/oauth2/authorize?" + urllib.parse.urlencode(given)

    async def authorize(self, user: str | None = "zhangsan", **overrides: str | None) -> Any:
        headers = {"Cookie": f"{USER_COOKIE}={urllib.parse.quote(user)}"} if user else {}
        return await self.client.get(self.authorize_path(**overrides), headers=headers, allow_redirects=False)

    async def code(self, user: str = "zhangsan", **overrides: str | None) -> str:
        resp = await self.authorize(user, **overrides)
        assert resp.status == 302, await resp.text()
        query: dict[str, list[str]] = urllib.parse.parse_qs(
            urllib.parse.urlsplit(resp.headers["Location"]).query
        )
        return query["code"][0]

    async def token(self, secret: str = SECRET) -> str:
        resp = await self.client.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": secret})
        body = await resp.json()
        return str(body["access_token"])

    async def userinfo(self, code: str | None, token: str | None = None) -> dict[str, Any]:
        params = {"access_token": token if token is not None else await self.token()}
        if code is not None:
            params["code"] = code
        resp = await self.client.get("/cgi-bin/auth/getuserinfo", params=params)
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


@pytest.fixture
async def env(aiohttp_client: Any) -> Env:
    clock = FakeClock()
    emulator = WeComEmulator(
        corp_id=CORP, apps={AGENT: SECRET, OTHER_AGENT: OTHER_SECRET}, clock=clock, org=ORG
    )
    return Env(await aiohttp_client(emulator.app()), emulator, clock)


async def test_the_member_of_the_cookie_comes_back_with_a_code_and_the_state(env: Env) -> None:
    resp = await env.authorize("zhangsan")
    assert resp.status == 302
    location = resp.headers["Location"]
    assert location.startswith(BACK + "?code=")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["state"] == ["1700000000zabc123"]
    (login,) = env.emulator.oauth.logins
    assert login.userid == "zhangsan" and login.agentid == AGENT and login.code == query["code"][0]
    assert await env.userinfo(query["code"][0]) == {"errcode": 0, "errmsg": "ok", "userid": "zhangsan"}


async def test_a_redirect_uri_with_a_query_and_a_fragment_keeps_them(env: Env) -> None:
    resp = await env.authorize("lisi", redirect_uri="https://bot.example.com/cb?x=1#top", state="s1")
    location = resp.headers["Location"]
    assert location.startswith("https://bot.example.com/cb?x=1&code=") and location.endswith("&state=s1#top")


async def test_without_a_known_member_the_page_lists_the_directory(env: Env) -> None:
    for user in (None, "nobody"):
        resp = await env.authorize(user)
        text = await resp.text()
        assert resp.status == 200 and resp.content_type == "text/html"
        assert "张三" in text and "李四 &lt;admin&gt;" in text and "<admin>" not in text
    links = [part.split('"')[0] for part in text.split('href="')[1:]]
    picked = next(link for link in links if "as=lisi" in link)
    resp = await env.client.get(picked.replace("&amp;", "&"), allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith(BACK + "?code=")
    assert env.emulator.oauth.logins[-1].userid == "lisi"
    # an explicit choice wins over the cookie; an unknown one shows the list again
    resp = await env.client.get(
        env.authorize_path(**{"as": "lisi"}),
        headers={"Cookie": f"{USER_COOKIE}=zhangsan"},
        allow_redirects=False,
    )
    assert resp.status == 302 and env.emulator.oauth.logins[-1].userid == "lisi"
    resp = await env.client.get(env.authorize_path(**{"as": "ghost"}), allow_redirects=False)
    assert resp.status == 200 and "选择" in await resp.text()


@pytest.mark.parametrize(
    ("overrides", "errcode"),
    [
        ({"appid": "ww-other"}, 40013),
        ({"appid": None}, 40013),
        ({"response_type": "token"}, 40058),
        ({"scope": "snsapi_login"}, 40058),
        ({"redirect_uri": "javascript:alert(1)"}, 40058),
        ({"redirect_uri": None}, 40058),
        ({"agentid": "999"}, 40056),
        ({"agentid": "abc"}, 40056),
        ({"agentid": "²"}, 40056),  # a digit to str.isdigit(), not to int()
        ({"agentid": "9" * 5000}, 40056),  # beyond int()'s digit limit
        ({"state": "x" * 129}, 40058),
        ({"redirect_uri": "https://bot.example.com:99999/x"}, 40058),  # no such port
        ({"redirect_uri": "https://[::1/x"}, 40058),  # a broken IPv6 host
        ({"redirect_uri": "https://:443/x"}, 40058),  # no host
        ({"redirect_uri": "https://bot.example.com/x\x00y"}, 40058),  # a control character
        ({"redirect_uri": "https://bot.example.com/a b"}, 40058),
    ],
)
async def test_a_bad_authorize_request_gets_an_error_page(
    env: Env, overrides: dict[str, str | None], errcode: int
) -> None:
    resp = await env.authorize("zhangsan", **overrides)
    text = await resp.text()
    assert resp.status == 400 and resp.content_type == "text/html"
    assert "出错了" in text and f"错误码：{errcode}" in text
    assert not env.emulator.oauth.logins


async def test_redirects_only_to_trusted_hosts_when_set(env: Env) -> None:
    env.emulator.oauth.trusted_hosts = {"bot.example.com"}
    assert (await env.authorize("zhangsan")).status == 302
    assert (await env.authorize("zhangsan", redirect_uri="https://evil.example.net/x")).status == 400


async def test_a_code_works_once(env: Env) -> None:
    code = await env.code()
    assert (await env.userinfo(code))["userid"] == "zhangsan"
    again = await env.userinfo(code)
    assert again["errcode"] == 40029 and again["errmsg"].startswith("invalid code")
    assert env.emulator.records.failures[-1].errcode == 40029


async def test_a_code_expires_after_five_minutes_of_the_emulator_clock(env: Env) -> None:
    fresh, stale = await env.code(), await env.code()
    token = await env.token()
    env.clock.advance(seconds=CODE_TTL.total_seconds() - 1)
    assert (await env.userinfo(fresh, token))["userid"] == "zhangsan"
    env.clock.advance(seconds=1)
    assert (await env.userinfo(stale, token))["errcode"] == 40029


async def test_a_code_belongs_to_the_app_it_was_issued_for(env: Env) -> None:
    code = await env.code()
    assert (await env.userinfo(code, await env.token(OTHER_SECRET)))["errcode"] == 40029
    assert (await env.userinfo(code))["userid"] == "zhangsan"  # a refusal did not use it up
    anyone = await env.code(agentid=None)  # no agentid asked for: any app of the corp
    assert (await env.userinfo(anyone, await env.token(OTHER_SECRET)))["userid"] == "zhangsan"


async def test_getuserinfo_checks_the_token_and_the_code_like_every_api_call(env: Env) -> None:
    code = await env.code()
    assert (await env.userinfo(code, token=""))["errcode"] == 41001
    assert (await env.userinfo(code, token="not-a-token"))["errcode"] == 40014
    assert (await env.userinfo(None))["errcode"] == 41008
    assert (await env.userinfo("made-up"))["errcode"] == 40029
    token = await env.token()
    env.clock.advance(seconds=timedelta(hours=2).total_seconds())  # the token's 7200 s
    assert (await env.userinfo(code, token))["errcode"] == 42001


async def test_chaos_switches_apply_and_leave_the_code_usable(env: Env) -> None:
    code = await env.code()
    token = await env.token()
    env.emulator.fail_next(1, 45009, path="/cgi-bin/auth/getuserinfo")
    assert (await env.userinfo(code, token))["errcode"] == 45009
    assert (await env.userinfo(code, token))["userid"] == "zhangsan"
    assert "/cgi-bin/auth/getuserinfo" in env.emulator.records.calls
