"""The work-order sidebar's HTTP routes (the page WeCom's chat toolbar, 聊天工具栏, opens beside a
1:1 chat with a customer):

    GET  /sidebar/workorder              the page (signed-in staff), else 302 to WeCom's OAuth
    GET  /sidebar/workorder/oauth?code&state   back from the OAuth: session cookie, 303 to the page
    GET  /sidebar/static/{sidebar.js,sidebar.css}
    GET  /sidebar/api/config?url=        wx.agentConfig's parameters, signed for the page's URL
    GET  /sidebar/api/context?external_userid=   the customer, their orders, the recent messages
    POST /sidebar/api/workorders         create a work order for the customer (JSON body)
    POST /sidebar/api/links              link chosen messages to an existing work order (JSON)

- Identity: WeCom's web OAuth names the staff member (bot.page.oauth.PageOAuth, as the ticket
  page); the sidebar then keeps a signed cookie session (bot.sidebar.session). The API needs the
  cookie AND the page's CSRF token in ``X-CSRF-Token`` (the cookie is SameSite=Lax and HttpOnly);
  POSTs must be ``application/json``. No session: 401; a bad token or an inactive user: 403.
- The page URL signed for wx.agentConfig must be the sidebar page under TICKETBOT_PUBLIC_URL
  (WeCom checks the domain is the app's trusted one; this endpoint signs nothing else).
- Every answer is ``no-store``, ``no-referrer`` and ``nosniff``; the page's CSP allows scripts only
  from ticketbot and the configured JS-SDK origins, no inline script or style, and framing only by
  ticketbot and TICKETBOT_FRAME_ANCESTORS. Errors are JSON {"error": ...} (HTML pages for the
  page routes) with a 4xx status; a bug is a 500 without a trace.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.sidebar import actions, context
from bot.sidebar.page import message_page, shell
from bot.sidebar.ports import Sidebar
from bot.sidebar.session import COOKIE, COOKIE_PATH, LOGIN_COOKIE, STATE_TTL, Session
from core.org import Org, User

log = logging.getLogger("ticketbot.sidebar")

SIDEBAR = web.AppKey("sidebar", Sidebar)
STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {
    "sidebar.js": "application/javascript",
    "sidebar.css": "text/css",
}
JS_API_LIST = ("getContext", "getCurExternalContact")
MAX_BODY = 64 * 1024
MAX_URL = 2048
_BAD_TEXT = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
CSRF_HEADER = "X-CSRF-Token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ApiHandler = Callable[[web.Request, Sidebar, User, Org], Awaitable[web.StreamResponse]]


# ---------------------------------------------------------------- responses


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _headers(sb: Sidebar, *, page: bool) -> dict[str, str]:
    ancestors = " ".join(("'self'", *sb.frame_ancestors))
    scripts = " ".join(dict.fromkeys(_origin(u) for u in sb.script_urls))
    if page:
        policy = (
            f"default-src 'none'; script-src 'self' {scripts}; style-src 'self'; img-src 'self' data: https:; "
            f"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
        )
    else:
        policy = (
            f"default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors {ancestors}"
        )
    return {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


def _message(sb: Sidebar, status: int, title: str, message: str, hint: str = "") -> web.Response:
    return web.Response(
        text=message_page(title, message, hint),
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=_headers(sb, page=False),
    )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data,
        status=status,
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def _secure(sb: Sidebar) -> bool:
    return sb.page_url.startswith("https://")


def _guarded(handler: Handler) -> Handler:
    """A bug becomes a plain 500 with no trace (the trace goes to the log)."""

    @wraps(handler)
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("sidebar failed", extra={"path": request.path, "method": request.method})
            if request.path.startswith("/sidebar/api/"):
                return _error(500, "出错了，请稍后再试")
            return _message(request.app[SIDEBAR], 500, "出错了", "页面暂时无法显示，请稍后再试。")

    return run


# ---------------------------------------------------------------- the page and its login


def _unavailable(sb: Sidebar) -> web.Response:
    return _message(sb, 503, "侧边栏未启用", "工单侧边栏需要企业微信应用（回调、Secret 和 AgentId）。")


async def _signed_in(request: web.Request, sb: Sidebar) -> tuple[Session, User, Org] | None:
    session = sb.sessions.verify(request.cookies.get(COOKIE))
    if session is None:
        return None
    org = await sb.directory.org()
    user = org.user(session.username)
    if user is None or not user.is_active:
        return None
    return session, user, org


@_guarded
async def page(request: web.Request) -> web.StreamResponse:
    sb = request.app[SIDEBAR]
    if sb.oauth is None or sb.sign_page is None:
        return _unavailable(sb)
    signed_in = await _signed_in(request, sb)
    if signed_in is not None:
        session, user, _ = signed_in
        html = shell(
            csrf_token=sb.sessions.csrf_token(session),
            staff_name=user.alias or user.username,
            script_urls=sb.script_urls,
            static="static",
        )
        return web.Response(
            text=html, content_type="text/html", charset="utf-8", headers=_headers(sb, page=True)
        )
    nonce = sb.sessions.login_nonce()
    target = sb.oauth.authorize_url(f"{sb.page_url}/oauth", sb.sessions.oauth_state(nonce))
    resp = web.Response(status=302, headers={**_headers(sb, page=False), "Location": target})
    resp.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=int(STATE_TTL.total_seconds()),
        path=COOKIE_PATH,
        secure=_secure(sb),
        httponly=True,
        samesite="Lax",
    )
    return resp


@_guarded
async def oauth_return(request: web.Request) -> web.StreamResponse:
    sb = request.app[SIDEBAR]
    if sb.oauth is None or sb.sign_page is None:
        return _unavailable(sb)
    q = request.query
    if not sb.sessions.check_state(q.get("state"), request.cookies.get(LOGIN_COOKIE)):
        return _message(sb, 403, "登录已失效", "登录过程已过期或不是从这里开始的，请重新打开侧边栏。")
    code = q.get("code", "")
    if not code or len(code) > 512 or _BAD_TEXT.search(code):
        return _message(sb, 400, "登录失败", "没有收到登录凭证，请重新打开侧边栏。")
    identity = await sb.oauth.identify(code)
    if not identity.username:
        return _message(sb, identity.status, "无法确认你的身份", identity.problem)
    session = sb.sessions.issue(identity.username)
    log.info("sidebar login", extra={"username": identity.username})
    resp = web.Response(status=303, headers={**_headers(sb, page=False), "Location": "../workorder"})
    resp.set_cookie(
        COOKIE,
        session.cookie,
        max_age=int(sb.sessions.ttl.total_seconds()),
        path=COOKIE_PATH,
        secure=_secure(sb),
        httponly=True,
        samesite="Lax",
    )
    resp.del_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return resp


@_guarded
async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info.get("name", "")
    kind = STATIC_FILES.get(name)
    if kind is None:
        return _error(404, "not found")
    return web.Response(
        body=(STATIC / name).read_bytes(),
        content_type=kind,
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


# ---------------------------------------------------------------- the API


def _api(handler: ApiHandler) -> Handler:
    """Signed in (cookie), the page's CSRF token, an active user; then `handler`."""

    @_guarded
    @wraps(handler)
    async def run(request: web.Request) -> web.StreamResponse:
        sb = request.app[SIDEBAR]
        if sb.oauth is None or sb.sign_page is None:
            return _error(503, "工单侧边栏未启用")
        session = sb.sessions.verify(request.cookies.get(COOKIE))
        if session is None:
            return _error(401, "登录已失效，请重新打开侧边栏")
        if not sb.sessions.check_csrf(session, request.headers.get(CSRF_HEADER)):
            log.info("sidebar request refused: bad CSRF token", extra={"username": session.username})
            return _error(403, "请求无效（页面已过期），请重新打开侧边栏")
        org = await sb.directory.org()
        user = org.user(session.username)
        if user is None or not user.is_active:
            return _error(403, "你的账号不在通讯录中或已停用")
        return await handler(request, sb, user, org)

    return run


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    if request.content_type != "application/json":
        return _error(415, "请求体应为 JSON（Content-Type: application/json）")
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _error(413, "请求体太大了")
    try:
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return _error(413, "请求体太大了")
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError, web.RequestPayloadError, ConnectionResetError):
        return _error(400, "请求体不是合法的 JSON")
    if not isinstance(data, dict):
        return _error(400, "请求体应为 JSON 对象")
    return data


async def config(request: web.Request, sb: Sidebar, user: User, org: Org) -> web.StreamResponse:
    url = request.query.get("url", "")
    if (
        len(url) > MAX_URL
        or "#" in url
        or _BAD_TEXT.search(url)
        or not (url == sb.page_url or url.startswith(sb.page_url + "?"))
    ):
        return _error(400, "url 应为侧边栏页面的地址（不含 #）")
    if sb.sign_page is None:
        return _error(503, "工单侧边栏未启用")
    try:
        signed = await sb.sign_page(url)
    except Exception as exc:
        log.warning("sidebar: page signature failed", extra={"error": type(exc).__name__})
        return _error(502, "暂时无法从企业微信获取签名，请稍后再试")
    return _json({**signed, "jsApiList": list(JS_API_LIST)})


async def show_context(request: web.Request, sb: Sidebar, user: User, org: Org) -> web.StreamResponse:
    external_userid = context.valid_external_userid(request.query.get("external_userid"))
    if external_userid is None:
        return _error(400, "external_userid 无效")
    if not await context.serves(sb, user, external_userid, org):
        log.info("sidebar: customer not followed by the staff member", extra={"username": user.username})
        return _error(403, context.NOT_SERVED)
    if sb.refresh is not None:
        try:
            await sb.refresh()
        except Exception as exc:  # the archive is best effort: show what is kept
            log.warning("sidebar: chat archive not refreshed", extra={"error": type(exc).__name__})
    return _json(await context.load(sb, user, external_userid, org))


def _answer(outcome: actions.Outcome | actions.Refusal, status: int) -> web.Response:
    if isinstance(outcome, actions.Refusal):
        return _error(outcome.status, outcome.message)
    return _json(
        {
            "order_no": outcome.order_no,
            "ticket_id": outcome.ticket_id,
            "title": outcome.title,
            "linked": outcome.linked,
            "total": outcome.total,
        },
        status,
    )


async def create_order(request: web.Request, sb: Sidebar, user: User, org: Org) -> web.StreamResponse:
    data = await _body(request)
    if isinstance(data, web.Response):
        return data
    return _answer(await actions.create(sb, user, org, data), 201)


async def link_messages(request: web.Request, sb: Sidebar, user: User, org: Org) -> web.StreamResponse:
    data = await _body(request)
    if isinstance(data, web.Response):
        return data
    return _answer(await actions.link(sb, user, org, data), 200)


def add_sidebar_routes(app: web.Application, sidebar: Sidebar) -> None:
    app[SIDEBAR] = sidebar
    app.router.add_get("/sidebar/workorder", page)
    app.router.add_get("/sidebar/workorder/oauth", oauth_return)
    app.router.add_get("/sidebar/static/{name}", static)
    app.router.add_get("/sidebar/api/config", _api(config))
    app.router.add_get("/sidebar/api/context", _api(show_context))
    app.router.add_post("/sidebar/api/workorders", _api(create_order))
    app.router.add_post("/sidebar/api/links", _api(link_messages))
