"""Async client for the WeCom server API (https://qyapi.weixin.qq.com/cgi-bin), one self-built app.

- Access token cached per client until shortly before `expires_in`; concurrent callers share ONE
  gettoken (single flight under a lock). On 40014 / 42001 the token is refreshed once and the call
  retried once.
- -1 (busy), 45009 (over the call limit) and 45033 (too many concurrent calls) are retried with
  exponential backoff through the injected `sleep`, at most `max_attempts` calls in all.
- WeCom silently drops the 31st message a minute to one member, so sends go through a per-recipient
  limiter (30/min and 1000/hour by default) that refuses with `RateLimited(retry_after_seconds)`
  instead of sending.
- The secret and the access token never reach a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from core.ports import Clock

log = logging.getLogger("ticketbot.wecom.client")

TOKEN_ERRORS = frozenset({40014, 42001})
TASK_ID_USED = 42035
TRANSIENT = frozenset({-1, 45009, 45033})
LOCAL_REFUSAL = -2  # errcode of errors raised by this client without asking WeCom


# ---------------------------------------------------------------- errors


class WeComError(Exception):
    """A call WeCom refused (or this client refused on its behalf): errcode, errmsg and what to do."""

    def __init__(self, errcode: int, errmsg: str, hint: str = "") -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.hint = hint
        text = f"WeCom errcode {errcode}: {errmsg}"
        super().__init__(f"{text} ({hint})" if hint else text)


class BadSecret(WeComError):
    """40001: the corp secret is wrong."""


class TokenRejected(WeComError):
    """40014 / 42001 even with a freshly fetched token."""


class IPNotTrusted(WeComError):
    """60020: this server's IP is not in the app's trusted IP list."""


class AllRecipientsInvalid(WeComError):
    """81013: no addressee is a member the app can reach."""


class NoPermission(WeComError):
    """48002: the app may not call this API."""


class ResponseCodeInvalid(WeComError):
    """60140: the card's response_code was already used or has expired."""


class TaskIdUsed(WeComError):
    """42035 (as the emulator answers; to be confirmed against a live app): a template card with
    this task_id was already sent by the app."""


class WeComBusy(WeComError):
    """-1 / 45009 / 45033 after every retry."""


class WeComUnavailable(WeComError):
    """No usable answer: connection failed, timed out, non-200 or not JSON.

    `maybe_delivered` is False only when the connection was never made."""

    def __init__(self, errmsg: str, *, maybe_delivered: bool = True) -> None:
        super().__init__(
            LOCAL_REFUSAL, errmsg, "WeCom could not be reached or answered nonsense; retry later"
        )
        self.maybe_delivered = maybe_delivered


class RateLimited(WeComError):
    """Not sent: a recipient already had its quota of messages; WeCom would drop this one silently."""

    def __init__(self, retry_after_seconds: float, userids: Sequence[str], limit: str) -> None:
        self.retry_after_seconds = retry_after_seconds
        self.userids = tuple(userids)
        super().__init__(
            LOCAL_REFUSAL,
            f"not sent: {', '.join(self.userids)} already had {limit}",
            f"retry after {retry_after_seconds:.0f} s; WeCom silently drops messages over the limit",
        )


def _from_ip(errmsg: str) -> str:
    found = re.search(r"from ip:\s*([0-9a-fA-F.:]+)", errmsg)
    return found.group(1) if found else "this server's public IP"


def error_for(errcode: int, errmsg: str) -> WeComError:
    """The WeComError subclass for an errcode, with a hint that says what to do."""
    if errcode == 40001:
        return BadSecret(
            errcode,
            errmsg,
            "the corp secret is wrong or was reset: copy the app's Secret from the admin console",
        )
    if errcode in TOKEN_ERRORS:
        return TokenRejected(
            errcode, errmsg, "WeCom rejected a freshly fetched access token; check corp id/secret"
        )
    if errcode == 60020:
        return IPNotTrusted(
            errcode,
            errmsg,
            f"add {_from_ip(errmsg)} to the app's trusted IPs (企业可信IP) in the WeCom admin console",
        )
    if errcode == 81013:
        return AllRecipientsInvalid(
            errcode,
            errmsg,
            "no recipient is a member within the app's visible range: check the userids and the app's 可见范围",
        )
    if errcode == 48002:
        return NoPermission(
            errcode,
            errmsg,
            "the app has no permission for this API: grant it in the admin console (API permissions / 可见范围)",
        )
    if errcode == 60140:
        return ResponseCodeInvalid(
            errcode,
            errmsg,
            "the card's response_code was used or is over 24 h old: send a fresh card instead",
        )
    if errcode == TASK_ID_USED:
        return TaskIdUsed(
            errcode, errmsg, "a card with this task_id was sent before; task ids are unique per app"
        )
    if errcode in TRANSIENT:
        return WeComBusy(errcode, errmsg, "WeCom is busy or the call limit was reached; retry later")
    return WeComError(errcode, errmsg)


# ---------------------------------------------------------------- results and the limiter


@dataclass(frozen=True, slots=True)
class SendResult:
    msgid: str
    response_code: str | None = None
    invalid_users: tuple[str, ...] = ()


class RecipientLimiter:
    """Sliding windows per recipient: at most `per_minute` in 60 s and `per_hour` in 3600 s."""

    def __init__(self, clock: Clock, *, per_minute: int = 30, per_hour: int = 1000) -> None:
        self._clock = clock
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._sent: dict[str, deque[datetime]] = {}

    def _window(self, userid: str, now: datetime) -> deque[datetime]:
        window = self._sent.setdefault(userid, deque())
        while window and now - window[0] >= timedelta(hours=1):
            window.popleft()
        return window

    def _wait(self, userid: str, now: datetime) -> tuple[float, str]:
        window = self._window(userid, now)
        minute = [t for t in window if now - t < timedelta(minutes=1)]
        wait, limit = 0.0, ""
        if len(minute) >= self.per_minute:
            wait = (minute[-self.per_minute] + timedelta(minutes=1) - now).total_seconds()
            limit = f"{self.per_minute} messages in the last minute"
        if len(window) >= self.per_hour:
            hour_wait = (window[-self.per_hour] + timedelta(hours=1) - now).total_seconds()
            if hour_wait > wait:
                wait, limit = hour_wait, f"{self.per_hour} messages in the last hour"
        return wait, limit

    def acquire(self, userids: Iterable[str]) -> list[str]:
        """Reserve one message for each recipient, or raise RateLimited and reserve nothing."""
        now = self._clock.now()
        users = list(dict.fromkeys(userids))
        blocked = [(u, *self._wait(u, now)) for u in users]
        over = [(u, w, lim) for u, w, lim in blocked if w > 0]
        if over:
            wait = max(w for _, w, _ in over)
            limit = next(lim for _, w, lim in over if w == wait)
            raise RateLimited(wait, [u for u, _, _ in over], limit)
        for u in users:
            self._sent[u].append(now)
        return users

    def release(self, userids: Iterable[str]) -> None:
        """Give back reservations for a message WeCom refused (it reached nobody)."""
        for u in userids:
            window = self._sent.get(u)
            if window:
                window.pop()


# ---------------------------------------------------------------- the client


class WeComClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_base: str,
        corp_id: str,
        corp_secret: str,
        agent_id: int,
        clock: Clock,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_attempts: int = 3,
        backoff: float = 0.5,
        refresh_margin: float = 300.0,
        timeout: float = 10.0,
        per_minute: int = 30,
        per_hour: int = 1000,
    ) -> None:
        self._session = session
        self._base = api_base.rstrip("/")
        self.corp_id = corp_id
        self._secret = corp_secret
        self.agent_id = agent_id
        self._clock = clock
        self._sleep = sleep
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._margin = timedelta(seconds=refresh_margin)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()
        self.limiter = RecipientLimiter(clock, per_minute=per_minute, per_hour=per_hour)

    def __repr__(self) -> str:
        return f"WeComClient(corp_id={self.corp_id!r}, agent_id={self.agent_id})"

    # ---- access token

    def _fresh(self) -> str | None:
        if self._token and self._expires_at and self._clock.now() < self._expires_at:
            return self._token
        return None

    async def access_token(self, *, stale: str | None = None) -> str:
        """The cached token, or one fetched by exactly one of the concurrent callers.

        `stale`: a token WeCom just rejected; it is not reused (unless another caller already replaced it).
        """
        token = self._fresh()
        if token and token != stale:
            return token
        async with self._lock:
            token = self._fresh()
            if token and token != stale:
                return token
            body = await self._with_retries(
                "GET", "/cgi-bin/gettoken", {"corpid": self.corp_id, "corpsecret": self._secret}, None
            )
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                raise WeComUnavailable("gettoken answered without an access_token")
            try:
                expires_in = int(body.get("expires_in", 7200))
            except (TypeError, ValueError):
                expires_in = 7200
            self._token = token
            self._expires_at = self._clock.now() + max(
                timedelta(seconds=expires_in) - self._margin, timedelta(seconds=expires_in / 2)
            )
            log.info(
                "wecom access token refreshed", extra={"expires_in": expires_in, "agent_id": self.agent_id}
            )
            return token

    # ---- plumbing

    async def _request_once(
        self, method: str, path: str, params: Mapping[str, str], payload: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """One HTTP call; the JSON object answered, or WeComUnavailable (the URL is never in the message)."""
        url = self._base + path
        try:
            async with self._session.request(
                method, url, params=params, json=payload, timeout=self._timeout
            ) as resp:
                if resp.status != 200:
                    raise WeComUnavailable(f"HTTP {resp.status} from {path}")
                body = await resp.json(content_type=None)
        except WeComUnavailable:
            raise
        except TimeoutError:
            raise WeComUnavailable(f"no answer from {path} in time") from None
        except aiohttp.ClientConnectorError:
            raise WeComUnavailable(f"cannot connect for {path}", maybe_delivered=False) from None
        except aiohttp.ClientError as exc:
            raise WeComUnavailable(f"{type(exc).__name__} calling {path}") from None
        except ValueError:
            raise WeComUnavailable(f"{path} did not answer JSON") from None
        if not isinstance(body, dict):
            raise WeComUnavailable(f"{path} did not answer a JSON object")
        return body

    async def _with_retries(
        self, method: str, path: str, params: Mapping[str, str], payload: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """One logical call: transient errcodes retried with backoff; other errcodes raised as-is.

        Token errcodes are returned to the caller (it refreshes); a POST is retried after a transport
        failure only when the connection was never made (a timeout may mean it was delivered).
        """
        for attempt in range(self._max_attempts):
            last = attempt == self._max_attempts - 1
            try:
                body = await self._request_once(method, path, params, payload)
            except WeComUnavailable as exc:
                if last or (method != "GET" and exc.maybe_delivered):
                    raise
                await self._backoff_sleep(attempt, path, "unavailable")
                continue
            errcode = _errcode(body)
            if errcode in TRANSIENT and not last:
                await self._backoff_sleep(attempt, path, str(errcode))
                continue
            if errcode != 0 and errcode not in TOKEN_ERRORS:
                raise error_for(errcode, str(body.get("errmsg", "")))
            return body
        raise AssertionError("unreachable")  # pragma: no cover

    async def _backoff_sleep(self, attempt: int, path: str, why: str) -> None:
        delay = self._backoff * 2**attempt
        log.warning("wecom call retried", extra={"path": path, "reason": why, "delay_s": delay})
        await self._sleep(delay)

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        token = await self.access_token()
        body = await self._with_retries(method, path, {**(params or {}), "access_token": token}, payload)
        errcode = _errcode(body)
        if errcode in TOKEN_ERRORS:
            log.info("wecom token rejected; refreshing once", extra={"path": path, "errcode": errcode})
            token = await self.access_token(stale=token)
            body = await self._with_retries(method, path, {**(params or {}), "access_token": token}, payload)
            errcode = _errcode(body)
            if errcode != 0:
                raise error_for(errcode, str(body.get("errmsg", "")))
        return body

    async def api_get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One GET of a /cgi-bin API with this client's token handling, retries and error mapping
        (for the API families kept in their own modules, e.g. bot/wecom/contacts.py)."""
        return await self._call("GET", path, params)

    # ---- messages

    async def _send(self, touser: str | Sequence[str], message: Mapping[str, Any]) -> SendResult:
        users = [touser] if isinstance(touser, str) else list(touser)
        users = [u for part in users for u in part.split("|") if u]
        if not users:
            raise AllRecipientsInvalid(LOCAL_REFUSAL, "no recipient given", "pass at least one userid")
        limited = [u for u in users if u != "@all"]
        reserved = self.limiter.acquire(limited)
        payload = {"touser": "|".join(users), "agentid": self.agent_id, **message}
        try:
            body = await self._call("POST", "/cgi-bin/message/send", payload=payload)
        except WeComUnavailable as exc:
            if not exc.maybe_delivered:  # never reached WeCom: give the quota back
                self.limiter.release(reserved)
            raise
        except WeComError:
            self.limiter.release(reserved)
            raise
        invalid = tuple(u for u in str(body.get("invaliduser") or "").split("|") if u)
        if invalid:
            self.limiter.release(u for u in reserved if u in invalid)
        code = body.get("response_code")
        return SendResult(
            str(body.get("msgid", "")), code if isinstance(code, str) and code else None, invalid
        )

    async def send_text(self, touser: str | Sequence[str], content: str) -> SendResult:
        """A text message to one member, several ("u1|u2" or a list), or "@all" (not rate-limited here)."""
        return await self._send(touser, {"msgtype": "text", "text": {"content": content}})

    async def send_template_card(
        self, touser: str | Sequence[str], card_json: Mapping[str, Any]
    ) -> SendResult:
        """A template card; `response_code` is set for button / vote / multiple interaction cards."""
        return await self._send(touser, {"msgtype": "template_card", "template_card": dict(card_json)})

    async def update_template_card(
        self, userids: Sequence[str], response_code: str, body: Mapping[str, Any]
    ) -> list[str]:
        """Update a sent card once with its response_code; `body` holds "button" or "template_card".
        Returns the userids WeCom reported invalid. 60140 raises ResponseCodeInvalid."""
        payload = {**body, "userids": list(userids), "agentid": self.agent_id, "response_code": response_code}
        answer = await self._call("POST", "/cgi-bin/message/update_template_card", payload=payload)
        invalid = answer.get("invaliduser") or []
        return [str(u) for u in invalid] if isinstance(invalid, list) else []

    # ---- directory

    async def get_user(self, userid: str) -> dict[str, Any]:
        body = await self._call("GET", "/cgi-bin/user/get", {"userid": userid})
        return {k: v for k, v in body.items() if k not in ("errcode", "errmsg")}

    async def user_id_by_code(self, code: str) -> str:
        """The member's userid behind an OAuth `code` (GET /cgi-bin/auth/getuserinfo; each code works
        once, for 5 minutes); "" when the code belongs to someone who is not a member of the corp.
        An invalid or used code raises WeComError with errcode 40029."""
        body = await self._call("GET", "/cgi-bin/auth/getuserinfo", {"code": code})
        userid = body.get("userid") or body.get("UserId")
        return userid if isinstance(userid, str) else ""

    async def agent_jsapi_ticket(self) -> tuple[str, int]:
        """(ticket, expires_in seconds) of the app's JS-SDK identity (GET /cgi-bin/ticket/get
        ?type=agent_config; for wx.agentConfig signatures). Cache it: bot.wecom.jsapi does."""
        body = await self._call("GET", "/cgi-bin/ticket/get", {"type": "agent_config"})
        ticket, expires_in = body.get("ticket"), body.get("expires_in", 7200)
        if not isinstance(ticket, str) or not ticket:
            raise WeComUnavailable("ticket/get answered without a ticket")
        return ticket, expires_in if isinstance(expires_in, int) and expires_in > 0 else 7200

    async def list_users(self, department_id: int, *, fetch_child: bool = False) -> list[dict[str, Any]]:
        params = {"department_id": str(department_id), "fetch_child": "1" if fetch_child else "0"}
        body = await self._call("GET", "/cgi-bin/user/list", params)
        users = body.get("userlist") or []
        return [dict(u) for u in users if isinstance(u, dict)]

    async def list_departments(self, department_id: int | None = None) -> list[dict[str, Any]]:
        params = {} if department_id is None else {"id": str(department_id)}
        body = await self._call("GET", "/cgi-bin/department/list", params)
        depts = body.get("department") or []
        return [dict(d) for d in depts if isinstance(d, dict)]


def _errcode(body: Mapping[str, Any]) -> int:
    try:
        return int(body.get("errcode", 0))
    except (TypeError, ValueError):
        return -1
