"""The ticket page's HTTP routes (HTML, for people; the JSON APIs live under /api).

    GET  /tickets/{id}?u&e&s[&m]      the page, as the viewer the signed link names
    GET  /tickets/{id}/oauth?code&state   back from the platform's OAuth: 303 to a fresh link
    POST /tickets/{id}/act            an action, authorised by the signed link in the form
    GET  /tickets/{id}/act            405, a page saying so (e.g. the address of a refusal, reopened)

- A valid link shows the page if its viewer is an active user who may see the ticket
  (core.access.can_view), else 403. Without a valid link (none, expired, tampered), the browser is
  sent to the platform's OAuth when one is wired (WeCom: connect/oauth2), else gets a page that
  says how to get a new link (410 for an expired one, 403 otherwise). An unknown ticket is 404.
- The link is the only credential, and it travels in the URL and in hidden form fields, never in
  a cookie: several tabs may be several people on one computer (the emulator's chat).
- An action runs on the engine as the viewer, pinned to the state the page showed
  (bot.page.actions). Success: 303 back to the page with ``m`` (e.g. 已同意) shown on top. A
  refusal changes nothing and shows the page as it is now with the reason: 409 when someone got
  there first or the ticket moved on, 400 bad input, 403 not allowed.
- Every answer is HTML with a strict Content-Security-Policy (no scripts; forms post to ticketbot
  only; framed only by ticketbot and TICKETBOT_FRAME_ANCESTORS), ``Referrer-Policy: no-referrer``
  (the URL is a credential), ``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff``.
  Bad input never gets a 500 or a trace.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps

from aiohttp import web

from bot.page import render, view
from bot.page.actions import Planned, Refusal, plan
from bot.page.links import LinkCheck, LinkSigner
from bot.page.oauth import PageOAuth
from core.access import can_view
from core.errors import Reason, Rejected
from core.org import Org
from core.ports import Directory, TicketQueries, WorkflowCatalog
from core.service import AlreadyHandled, Done, Guard, TicketService
from core.ticket import Ticket
from core.workflow import Workflow

log = logging.getLogger("ticketbot.page")

MAX_TICKET_ID = 2**63 - 1
MAX_FORM_VALUES = 200
_ID_RE = re.compile(r"[0-9]{1,19}\Z", re.ASCII)
IN_PLACE = "act"  # the forms' action on a page a refused action answers (at /tickets/{id}/act)
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")

REASON_STATUS: dict[Reason, int] = {  # as the loonflow API's strict statuses (api.envelope)
    Reason.NOT_FOUND: 404,
    Reason.NOT_PARTICIPANT: 403,
    Reason.NO_PERMISSION: 403,
    Reason.UNKNOWN_USER: 403,
    Reason.BAD_TRANSITION: 400,
    Reason.BAD_STATE: 400,
    Reason.BAD_FIELD: 400,
    Reason.MISSING_FIELD: 400,
    Reason.READ_ONLY_FIELD: 400,
    Reason.INVALID: 400,
    Reason.NO_PARTICIPANT: 409,
    Reason.TICKET_ENDED: 409,
    Reason.MUST_ACCEPT: 409,
    Reason.IN_ADD_NODE: 409,
    Reason.ALREADY_VOTED: 409,
    Reason.STALE: 409,
}


@dataclass(frozen=True, slots=True)
class TicketPage:
    """What the page needs; `oauth` is None when no platform can identify a person."""

    service: TicketService
    queries: TicketQueries
    catalog: WorkflowCatalog
    directory: Directory
    links: LinkSigner
    frame_ancestors: tuple[str, ...] = ()
    oauth: PageOAuth | None = None


PAGE = web.AppKey("ticket_page", TicketPage)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ---------------------------------------------------------------- responses


def security_headers(page: TicketPage) -> dict[str, str]:
    ancestors = " ".join(("'self'", *page.frame_ancestors))
    return {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
            f"form-action 'self'; frame-ancestors {ancestors}"
        ),
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


def _html(page: TicketPage, body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=body, status=status, content_type="text/html", charset="utf-8", headers=security_headers(page)
    )


def _message(page: TicketPage, status: int, title: str, message: str, hint: str = "") -> web.Response:
    return _html(page, render.message_page(title, message, hint), status)


def _redirect(page: TicketPage, location: str, status: int) -> web.Response:
    return web.Response(status=status, headers={**security_headers(page), "Location": location})


def _new_link_hint(ticket_id: int) -> str:
    return f"在聊天中发送“查看 {ticket_id}”获取新链接。Send “show {ticket_id}” in the chat for a new link."


def _not_found(page: TicketPage) -> web.Response:
    return _message(page, 404, "工单不存在", "找不到这个工单，它可能已被删除。")


def _no_access(page: TicketPage) -> web.Response:
    return _message(page, 403, "无权查看", "你没有查看这个工单的权限。")


def _bad_link(page: TicketPage, ticket_id: int, check: LinkCheck) -> web.Response:
    if check == LinkCheck.EXPIRED:
        return _message(page, 410, "链接已过期", "这个工单链接已过期。", _new_link_hint(ticket_id))
    return _message(page, 403, "链接无效", "这个工单链接无效或不完整。", _new_link_hint(ticket_id))


def _guarded(handler: Handler) -> Handler:
    """A bug becomes a plain 500 page with no trace (the trace goes to the log)."""

    @wraps(handler)
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("ticket page failed", extra={"path": request.path, "method": request.method})
            page = request.app[PAGE]
            return _message(page, 500, "出错了", "页面暂时无法显示，请稍后再试。")

    return run


# ---------------------------------------------------------------- loading


def _ticket_id(request: web.Request) -> int | None:
    raw = request.match_info.get("ticket_id", "")
    if not _ID_RE.match(raw):
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_TICKET_ID else None


async def _load(page: TicketPage, ticket_id: int) -> tuple[Ticket, Workflow] | None:
    ticket = await page.queries.get_ticket(ticket_id)
    if ticket is None or ticket.is_deleted:
        return None
    wf = page.catalog.get(ticket.workflow_id, ticket.workflow_version) or page.catalog.get(ticket.workflow_id)
    return (ticket, wf) if wf is not None else None


def _may_view(ticket: Ticket, wf: Workflow, org: Org, username: str) -> bool:
    return org.active(username) and can_view(ticket, wf, org, username)


async def _render(
    page: TicketPage,
    ticket: Ticket,
    wf: Workflow,
    org: Org,
    viewer: str,
    auth: dict[str, str],
    expires: int,
    *,
    flash: str = "",
    ok: bool = True,
    status: int = 200,
    form_action: str = "",
) -> web.Response:
    logs = await page.queries.flow_logs(ticket.id, desc=False)
    data = view.build(
        ticket,
        wf,
        org,
        logs,
        viewer,
        auth=auth,
        expires=expires,
        flash=flash,
        flash_is_ok=ok,
        form_action=form_action,
    )
    return _html(page, render.page(data), status)


def _link_params(username: str, expires: int, signature: str) -> dict[str, str]:
    return {"u": username, "e": str(expires), "s": signature}


def _relative(ticket_id: int, params: dict[str, str]) -> str:
    """The page's URL relative to /tickets/{id}/act or /tickets/{id}/oauth (so any path prefix of
    the public URL, and the host the browser used, are kept)."""
    return f"../{ticket_id}?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}"


# ---------------------------------------------------------------- GET /tickets/{id}


@_guarded
async def show(request: web.Request) -> web.StreamResponse:
    page = request.app[PAGE]
    ticket_id = _ticket_id(request)
    if ticket_id is None:
        return _not_found(page)
    loaded = await _load(page, ticket_id)
    if loaded is None:
        return _not_found(page)
    ticket, wf = loaded
    q = request.query
    checked = page.links.verify(ticket_id, q.get("u"), q.get("e"), q.get("s"))
    if not checked.ok:
        if page.oauth is not None:
            redirect_uri = f"{page.links.public_url}/tickets/{ticket_id}/oauth"
            target = page.oauth.authorize_url(redirect_uri, page.links.oauth_state(ticket_id))
            return _redirect(page, target, 302)
        return _bad_link(page, ticket_id, checked.check)
    org = await page.directory.org()
    if not _may_view(ticket, wf, org, checked.username):
        log.info("ticket page refused", extra={"ticket_id": ticket_id, "username": checked.username})
        return _no_access(page)
    message = q.get("m", "")
    flash = message if view.flash_ok(message, wf) else ""
    auth = _link_params(checked.username, checked.expires, q.get("s", ""))
    return await _render(page, ticket, wf, org, checked.username, auth, checked.expires, flash=flash)


# ---------------------------------------------------------------- GET /tickets/{id}/oauth


@_guarded
async def oauth_return(request: web.Request) -> web.StreamResponse:
    page = request.app[PAGE]
    ticket_id = _ticket_id(request)
    if ticket_id is None or page.oauth is None:
        return _not_found(page)
    q = request.query
    state = page.links.verify_state(ticket_id, q.get("state"))
    if state != LinkCheck.OK:
        return _message(
            page, 403, "登录已失效", "登录过程已过期或无效，请重新打开工单链接。", _new_link_hint(ticket_id)
        )
    code = q.get("code", "")
    if not code or len(code) > 512 or _BAD_TEXT.search(code):
        return _message(page, 400, "登录失败", "没有收到登录凭证，请重新打开工单链接。")
    identity = await page.oauth.identify(code)
    if not identity.username:
        return _message(
            page, identity.status, "无法确认你的身份", identity.problem, _new_link_hint(ticket_id)
        )
    log.info("ticket page login", extra={"ticket_id": ticket_id, "username": identity.username})
    params = page.links.params(ticket_id, identity.username)
    return _redirect(page, _relative(ticket_id, params), 303)


# ---------------------------------------------------------------- POST /tickets/{id}/act


async def _form(request: web.Request) -> dict[str, list[str]] | int:
    """The posted form as name -> values, or the status of a refusal (400, 413)."""
    try:
        data = await request.post()
    except web.HTTPRequestEntityTooLarge:
        return 413
    except (ValueError, UnicodeDecodeError, LookupError, web.RequestPayloadError, ConnectionResetError):
        return 400  # a body that cannot be read (a broken Content-Encoding) or ended early
    if len(data) > MAX_FORM_VALUES:
        return 400
    out: dict[str, list[str]] = {}
    for key, value in data.items():
        if not isinstance(value, str) or _BAD_TEXT.search(key) or _BAD_TEXT.search(value):
            return 400
        out.setdefault(key, []).append(value)
    return out


def _pin(state_id: int) -> Guard:
    def guard(ticket: Ticket, wf: Workflow, org: Org) -> Rejected | None:
        if ticket.state_id == state_id:
            return None
        state = wf.state(ticket.state_id)
        where = state.name if state is not None else str(ticket.state_id)
        return Rejected(
            Reason.STALE, f"ticket {ticket.sn} has moved on to '{where}' since the page was loaded"
        )

    return guard


@_guarded
async def act(request: web.Request) -> web.StreamResponse:
    page = request.app[PAGE]
    ticket_id = _ticket_id(request)
    if ticket_id is None:
        return _not_found(page)
    form = await _form(request)
    if isinstance(form, int):
        what = "提交的内容太大了。" if form == 413 else "提交的表单无法读取。"
        return _message(page, form, "无法处理", what)

    def one(name: str) -> str | None:
        values = form.get(name)
        return values[0] if values else None

    checked = page.links.verify(ticket_id, one("u"), one("e"), one("s"))
    if not checked.ok:
        return _bad_link(page, ticket_id, checked.check)
    loaded = await _load(page, ticket_id)
    if loaded is None:
        return _not_found(page)
    ticket, wf = loaded
    org = await page.directory.org()
    viewer = checked.username
    if not _may_view(ticket, wf, org, viewer):
        return _no_access(page)
    auth = _link_params(viewer, checked.expires, one("s") or "")
    planned = plan(form, ticket, wf, org, viewer)
    if isinstance(planned, Refusal):
        return await _render(
            page,
            ticket,
            wf,
            org,
            viewer,
            auth,
            checked.expires,
            flash=planned.message,
            ok=False,
            status=planned.status,
            form_action=IN_PLACE,
        )
    result = await _run(page, ticket_id, planned)
    if isinstance(result, Done):
        done = f"已{planned.done}"
        log.info("ticket page action", extra={"ticket_id": ticket_id, "username": viewer, "done": done})
        return _redirect(page, _relative(ticket_id, {**auth, "m": done}), 303)
    if isinstance(result, AlreadyHandled):
        flash, status = f"已经有人处理过了：{result.message}", 409
    else:
        flash, status = f"未执行：{result.message}", REASON_STATUS.get(result.reason, 400)
    log.info(
        "ticket page action refused",
        extra={"ticket_id": ticket_id, "username": viewer, "status": status},
    )
    reloaded = await _load(page, ticket_id)
    if reloaded is None:
        return _not_found(page)
    ticket, wf = reloaded
    if not _may_view(ticket, wf, org, viewer):
        return _message(page, status, "未执行", flash)
    return await _render(
        page,
        ticket,
        wf,
        org,
        viewer,
        auth,
        checked.expires,
        flash=flash,
        ok=False,
        status=status,
        form_action=IN_PLACE,
    )


@_guarded
async def act_get(request: web.Request) -> web.StreamResponse:
    """A GET of the action URL (the address bar of a page a refused action answered, reopened or
    shared): it carries no link, so it can only say where to go."""
    page = request.app[PAGE]
    ticket_id = _ticket_id(request)
    if ticket_id is None:
        return _not_found(page)
    resp = _message(
        page, 405, "请回到工单页面", "这个地址只接受工单页面提交的操作。", _new_link_hint(ticket_id)
    )
    resp.headers["Allow"] = "POST"
    return resp


async def _run(page: TicketPage, ticket_id: int, planned: Planned) -> Done | Rejected | AlreadyHandled:
    guard = _pin(planned.state_id) if planned.pin else None
    return await page.service.execute(ticket_id, planned.command, guard=guard)


def add_page_routes(app: web.Application, page: TicketPage) -> None:
    app[PAGE] = page
    app.router.add_get("/tickets/{ticket_id}", show)
    app.router.add_get("/tickets/{ticket_id}/oauth", oauth_return)
    app.router.add_post("/tickets/{ticket_id}/act", act)
    app.router.add_get("/tickets/{ticket_id}/act", act_get)
