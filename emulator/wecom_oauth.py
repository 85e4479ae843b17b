"""WeCom's web OAuth (网页授权登录) in the emulator: who opened a link inside WeCom.

    GET /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state[&agentid]
        (open.weixin.qq.com in WeCom). The member is the one the emulator's web chat page is
        showing (cookie ``emulator_wecom_user``, set before it opens a link), or the one picked on
        a small page listing the directory (links that add ``as=<userid>``) when there is no such
        cookie. Then 302 to ``redirect_uri`` with ``code`` and ``state``. A code works once, for
        5 minutes of the emulator's clock, and only for the app named by ``agentid`` (any app of
        the corp when the request named none). Bad appid (not the corp id), response_type (not
        ``code``), scope, agentid or redirect_uri: a 400 error page, as WeCom shows one.
    GET /cgi-bin/auth/getuserinfo?access_token&code
        -> {"errcode": 0, "errmsg": "ok", "userid": "..."}; the token is checked like every
        /cgi-bin call (and chaos switches apply); an unknown, used or expired code (or one issued
        for another app) is 40029 "invalid code", a missing one 41008.

The stand-in imports nothing of the product. Logins are recorded in `WeComOAuth.logins`.
"""

from __future__ import annotations

import html
import re
import secrets
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator.wecom import MORE_INFO, ApiError

if TYPE_CHECKING:
    from emulator.wecom import WeComEmulator

CODE_TTL = timedelta(minutes=5)
USER_COOKIE = "emulator_wecom_user"
SCOPES = frozenset({"snsapi_base", "snsapi_privateinfo", "snsapi_userinfo"})
STATE_MAX = 128
_AGENT_ID_RE = re.compile(r"[0-9]{1,18}\Z", re.ASCII)  # str.isdigit() takes "²", int() does not
_NOT_IN_URL = re.compile("[\x00-\x20\x7f-\x9f\ud800-\udfff]")


@dataclass(slots=True)
class _Code:
    userid: str
    agentid: int | None
    issued_at: datetime
    used: bool = False


@dataclass(frozen=True, slots=True)
class OAuthLogin:
    """A code handed out: to whom, for which app, back to where."""

    code: str
    userid: str
    agentid: int | None
    redirect_uri: str
    at: datetime


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:15px/1.6 sans-serif;margin:0;padding:24px;color:#1d2129;background:#f5f6f7}"
        "main{max-width:480px;margin:0 auto;background:#fff;border-radius:8px;padding:20px}"
        "a{display:block;padding:10px 0;color:#1677ff;text-decoration:none;border-bottom:1px solid #eee}"
        ".muted{color:#86909c;font-size:13px}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _error_page(errcode: int, message: str) -> web.Response:
    """What WeCom shows for a bad authorize request: an error page with the code."""
    body = f'<h2>出错了</h2><p>{html.escape(message)}</p><p class="muted">错误码：{errcode}</p>'
    return _page("出错了", body, 400)


@dataclass(slots=True)
class WeComOAuth:
    emulator: WeComEmulator
    trusted_hosts: set[str] | None = None  # None: any redirect_uri host (WeCom checks 可信域名)
    logins: list[OAuthLogin] = field(default_factory=list)
    _codes: dict[str, _Code] = field(default_factory=dict)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/connect/oauth2/authorize", self._authorize),
            web.get("/cgi-bin/auth/getuserinfo", self._getuserinfo),
        ]

    def issue_code(self, userid: str, agentid: int | None = None, redirect_uri: str = "") -> str:
        """A fresh code for `userid`, as the authorize page hands out (tests may call it directly)."""
        code = secrets.token_urlsafe(24)
        now = self.emulator.clock.now()
        self._codes[code] = _Code(userid, agentid, now)
        self.logins.append(OAuthLogin(code, userid, agentid, redirect_uri, now))
        return code

    # ---- GET /connect/oauth2/authorize

    def _refusal(self, query: Any) -> web.Response | None:
        emu = self.emulator
        if query.get("appid", "") != emu.corp_id:
            return _error_page(40013, "appid 参数错误：不是本企业的 CorpID（invalid corpid）")
        if query.get("response_type", "") != "code":
            return _error_page(40058, "response_type 参数错误，必须为 code")
        if query.get("scope", "") not in SCOPES:
            return _error_page(40058, "scope 参数错误（snsapi_base 或 snsapi_privateinfo）")
        raw = query.get("redirect_uri", "")
        try:
            redirect = urllib.parse.urlsplit(raw)
            redirect.port  # noqa: B018 - a port that is not a number within 0..65535 raises ValueError
        except ValueError:  # e.g. "https://[::1/x" or "https://host:99999/"
            return _error_page(40058, "redirect_uri 参数错误：不是合法的地址")
        if redirect.scheme not in ("http", "https") or not redirect.hostname:
            return _error_page(40058, "redirect_uri 参数错误：需要 http(s) 的完整地址")
        if _NOT_IN_URL.search(raw):  # spaces, controls (a header injection), lone surrogates
            return _error_page(40058, "redirect_uri 参数错误：地址中有空白、控制字符或无效字符")
        if self.trusted_hosts is not None and (redirect.hostname or "") not in self.trusted_hosts:
            return _error_page(50001, "redirect_uri 与应用的可信域名不一致（redirect_uri not trusted）")
        agentid = query.get("agentid")
        if agentid is not None and (not _AGENT_ID_RE.match(agentid) or int(agentid) not in emu.apps):
            return _error_page(40056, "agentid 参数错误（invalid agentid）")
        if len(query.get("state", "")) > STATE_MAX:
            return _error_page(40058, "state 参数过长（最多 128 字节）")
        return None

    def _who(self, request: web.Request) -> str | None:
        users = self.emulator.users
        chosen = request.query.get("as")
        if chosen is not None:
            return chosen if chosen in users else None
        cookie = urllib.parse.unquote(request.cookies.get(USER_COOKIE, ""))
        return cookie if cookie in users else None

    def _chooser(self, request: web.Request) -> web.Response:
        base = [(k, v) for k, v in request.query.items() if k != "as"]
        links = []
        for userid in sorted(self.emulator.users):
            user = self.emulator.users[userid]
            query = urllib.parse.urlencode([*base, ("as", userid)], quote_via=urllib.parse.quote)
            name = str(user.get("name") or userid)
            links.append(
                f'<a href="{html.escape(request.path + "?" + query)}">{html.escape(name)}'
                f' <span class="muted">{html.escape(userid)}</span></a>'
            )
        body = (
            "<h2>企业微信登录（模拟器）</h2>"
            '<p class="muted">没有从聊天页面打开，请选择以哪位成员的身份继续：</p>' + "".join(links)
        )
        return _page("选择成员", body)

    async def _authorize(self, request: web.Request) -> web.Response:
        self.emulator.records.calls.append(request.path)
        refused = self._refusal(request.query)
        if refused is not None:
            return refused
        userid = self._who(request)
        if userid is None:
            return self._chooser(request)
        q = request.query
        agentid = int(q["agentid"]) if "agentid" in q else None
        redirect_uri = q["redirect_uri"]
        code = self.issue_code(userid, agentid, redirect_uri)
        target, _, fragment = redirect_uri.partition("#")
        extra = urllib.parse.urlencode({"code": code, "state": q.get("state", "")})
        location = f"{target}{'&' if '?' in target else '?'}{extra}" + (f"#{fragment}" if fragment else "")
        try:
            found = web.HTTPFound(location)
        except ValueError:  # an address yarl cannot take, whatever _refusal let through
            return _error_page(40058, "redirect_uri 参数错误：不是合法的地址")
        raise found

    # ---- GET /cgi-bin/auth/getuserinfo

    async def _getuserinfo(self, request: web.Request) -> web.Response:
        emu = self.emulator

        async def body(req: web.Request) -> dict[str, Any]:
            agentid = emu._agent_for(req)
            code = req.query.get("code", "")
            if not code:
                raise ApiError(41008, f"missing code, {MORE_INFO}41008")
            entry = self._codes.get(code)
            now = emu.clock.now()
            if (
                entry is None
                or entry.used
                or now - entry.issued_at >= CODE_TTL
                or (entry.agentid is not None and entry.agentid != agentid)
            ):
                raise ApiError(40029, f"invalid code, {MORE_INFO}40029")
            entry.used = True
            return {"userid": entry.userid}

        return await emu._answer(request, body)
